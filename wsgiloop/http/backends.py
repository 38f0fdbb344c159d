"""Which request parser to use: ``--parser auto|python|httptools``.

* ``python``: :class:`~wsgiloop.http.parser.RequestParser`, pure Python, always there;
* ``httptools``: :class:`~wsgiloop.http.httptools_parser.HttptoolsRequestParser`, the
  request head tokenized by llhttp (C), the ``fast`` extra (``pip install
  wsgiloop[fast]``); same events and statuses as ``python``;
* ``auto``: :data:`AUTO`.  Measured (docs/conformance.md, "Parser backends"), the
  httptools backend is not faster end to end: checking in Python what llhttp hands back
  costs what llhttp saves.  So ``auto`` is ``python``, whether httptools is installed
  or not.
"""

from __future__ import annotations

from .parser import RequestParser

__all__ = ["AUTO", "BACKENDS", "parser_class"]

BACKENDS = ("auto", "python", "httptools")
#: the backend ``auto`` means
AUTO = "python"


def parser_class(name: str = "auto") -> type[RequestParser]:
    """The parser class of backend ``name`` (one of :data:`BACKENDS`).

    Raises ``ImportError`` for ``httptools`` when the package is not installed, and
    ``ValueError`` for an unknown name."""
    if name == "auto":
        name = AUTO
    if name == "python":
        return RequestParser
    if name == "httptools":
        from .httptools_parser import HttptoolsRequestParser
        return HttptoolsRequestParser
    raise ValueError(f"unknown parser backend {name!r}; expected one of "
                     + ", ".join(BACKENDS))
