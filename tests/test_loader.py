"""Loading the application from a spec, and the one-line errors when that fails."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

import pytest

from wsgiloop.loader import AppLoadError, load_app, prepend_sys_path

_counter = itertools.count()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write modules (``"pkg.mod"`` makes packages too) under a fresh sys.path entry.

    Names get a unique suffix so that sys.modules never serves a stale module; the
    fixture returns the real name and forgets the modules afterwards.
    """
    suffix = f"_{next(_counter)}_{tmp_path.name}".replace("-", "_")

    def make(dotted: str, source: str = "") -> str:
        parts = [p + suffix if i == 0 else p for i, p in enumerate(dotted.split("."))]
        directory = tmp_path
        for package in parts[:-1]:
            directory = directory / package
            directory.mkdir(exist_ok=True)
            init = directory / "__init__.py"
            if not init.exists():
                init.write_text("")
        (directory / f"{parts[-1]}.py").write_text(textwrap.dedent(source))
        name = ".".join(parts)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in list(sys.modules):
        if name.split(".")[0].endswith(suffix):
            del sys.modules[name]


APP = """
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]
"""


def error(spec: str) -> str:
    with pytest.raises(AppLoadError) as info:
        load_app(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_module_colon_app(make_module):
    name = make_module("plain", APP)
    assert load_app(f"{name}:app") is sys.modules[name].app


def test_bare_module_prefers_application_then_app(make_module):
    both = make_module("both", APP + "application = lambda e, s: []\n")
    assert load_app(both) is sys.modules[both].application
    only_app = make_module("only_app", APP)
    assert load_app(only_app) is sys.modules[only_app].app
    neither = make_module("neither", "x = 1\n")
    assert "has neither 'application' nor 'app'" in error(neither)


def test_dotted_module_and_attribute_path(make_module):
    name = make_module("pkg.sub.mod", APP + """
class Holder:
    class Inner:
        wsgi = staticmethod(app)
""")
    assert load_app(f"{name}:Holder.Inner.wsgi") is sys.modules[name].app


def test_factory_without_arguments(make_module):
    name = make_module("factory", APP + """
calls = []
def create_app():
    calls.append(1)
    return app
""")
    assert load_app(f"{name}:create_app()") is sys.modules[name].app
    assert sys.modules[name].calls == [1]


def test_factory_with_literal_arguments(make_module):
    name = make_module("factory_args", """
def create_app(label, *, debug=False, extra=None):
    def app(environ, start_response):
        return []
    app.config = (label, debug, extra)
    return app
""")
    app = load_app(f'{name}:create_app("prod", debug=True, extra={{"a": [1, 2]}})')
    assert app.config == ("prod", True, {"a": [1, 2]})


def test_factory_arguments_must_be_literals(make_module):
    name = make_module("factory_lit", "def create_app(x): return lambda e, s: []\n")
    assert "factory arguments must be Python literals" in error(
        f"{name}:create_app(__import__('os'))")
    assert "factory arguments must be Python literals" in error(f"{name}:create_app(*[1])")


def test_factory_that_raises(make_module):
    name = make_module("factory_raises", """
def create_app():
    raise ValueError("no database configured")
""")
    message = error(f"{name}:create_app()")
    assert f"calling {name}:create_app() failed: ValueError: no database configured" in message
    assert f"{name}.py:3" in message


def test_factory_returning_non_callable(make_module):
    name = make_module("factory_none", "def create_app(): return None\n")
    assert "returned an object of type NoneType, which is not callable" in error(
        f"{name}:create_app()")


def test_factory_target_not_callable(make_module):
    name = make_module("factory_target", "thing = 3\n")
    assert "is not callable (it is of type int)" in error(f"{name}:thing()")


def test_module_not_found():
    assert error("no_such_module_xyz:app") == (
        "module 'no_such_module_xyz' not found; is it in the current directory or on "
        "PYTHONPATH?")


def test_submodule_of_missing_package_not_found():
    message = error("no_such_pkg_xyz.mod:app")
    assert "module 'no_such_pkg_xyz.mod' not found (no module named 'no_such_pkg_xyz')" in (
        message)


def test_missing_submodule_of_existing_package(make_module):
    name = make_module("realpkg.mod", APP)
    package = name.split(".")[0]
    assert f"module '{package}.missing' not found" in error(f"{package}.missing:app")


def test_import_error_inside_the_module_is_not_module_not_found(make_module):
    name = make_module("needs_dep", "x = 1\nimport no_such_dependency_xyz\n")
    message = error(f"{name}:app")
    assert message.startswith(f"error importing '{name}': ModuleNotFoundError: "
                              f"No module named 'no_such_dependency_xyz'")
    assert f"{name}.py:2)" in message
    assert "not found;" not in message


def test_plain_import_error_inside_the_module(make_module):
    name = make_module("bad_from", "from os import no_such_name_xyz\n")
    message = error(f"{name}:app")
    assert f"error importing '{name}': ImportError: cannot import name 'no_such_name_xyz'" in (
        message)


def test_other_exception_while_importing(make_module):
    name = make_module("raises", "raise RuntimeError('boom\\nsecond line')\n")
    message = error(f"{name}:app")
    assert f"error importing '{name}': RuntimeError: boom second line" in message


def test_system_exit_while_importing(make_module):
    name = make_module("exits", "import sys\nsys.exit(3)\n")
    assert f"error importing '{name}': SystemExit: 3" in error(name)


def test_syntax_error(make_module, tmp_path):
    name = make_module("broken", "x = 1\ndef f(:\n    pass\n")
    message = error(f"{name}:app")
    assert message.startswith(f"syntax error in {tmp_path / name}.py:2: ")


def test_syntax_error_in_a_module_it_imports(make_module, tmp_path):
    dep = make_module("broken_dep", "if True\n")
    name = make_module("imports_broken", f"import {dep}\n")
    assert error(name).startswith(f"syntax error in {tmp_path / dep}.py:1: ")


def test_attribute_missing(make_module):
    name = make_module("attrs", APP + "class Holder:\n    pass\n")
    assert error(f"{name}:nope") == f"module '{name}' has no attribute 'nope'"
    assert error(f"{name}:Holder.inner") == f"'{name}:Holder' has no attribute 'inner'"


def test_not_callable(make_module):
    name = make_module("notcallable", "app = 'hello'\n")
    assert error(f"{name}:app") == (
        f"'{name}:app' is not callable (it is of type str), so not a WSGI application")
    assert "not callable" in error(name)


@pytest.mark.parametrize("spec", ["", ":app", "mod:", "a-b:app", "mod:1+2", "mod:app[0]",
                                  "mod:app.", "mod:lambda: 1", "mod..x:app"])
def test_invalid_specs(spec):
    assert error(spec).startswith(f"invalid application spec {spec!r}")


def test_prepend_sys_path(monkeypatch):
    monkeypatch.setattr(sys, "path", ["/a", "/b", "/c"])
    prepend_sys_path("/b")
    assert sys.path == ["/b", "/a", "/c"]
    prepend_sys_path("/d")
    assert sys.path == ["/d", "/b", "/a", "/c"]


def test_error_keeps_the_cause(make_module):
    name = make_module("cause", "raise KeyError('k')\n")
    with pytest.raises(AppLoadError) as info:
        load_app(name)
    assert isinstance(info.value.__cause__, KeyError)
