"""The request parser backends that the parser tests run over: ``python`` always,
``httptools`` when the package is installed (the ``fast`` extra; the ``test`` extra
brings it too), else that leg is skipped."""

from __future__ import annotations

import pytest

from wsgiloop.http import RequestParser

try:
    from wsgiloop.http.httptools_parser import HttptoolsRequestParser
except ImportError:  # pragma: no cover - the test extra installs httptools
    HttptoolsRequestParser = None

NEEDS_HTTPTOOLS = pytest.mark.skipif(HttptoolsRequestParser is None,
                                     reason="httptools is not installed")

#: parser classes, for ``parametrize("parser_class", BACKENDS)``
BACKENDS = [pytest.param(RequestParser, id="python"),
            pytest.param(HttptoolsRequestParser, id="httptools", marks=NEEDS_HTTPTOOLS)]
#: the same as ``--parser`` values, for tests against a server
BACKEND_NAMES = [pytest.param("python", id="python"),
                 pytest.param("httptools", id="httptools", marks=NEEDS_HTTPTOOLS)]
