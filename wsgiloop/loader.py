"""Find the WSGI application named by an application spec such as ``myapp:app``.

Spec forms:

* ``module:name`` and ``package.module:name.attr`` -- an attribute path;
* ``module:factory()`` or ``module:factory("arg", debug=True)`` -- call a factory, with
  literal arguments only (read by :func:`ast.literal_eval`, never evaluated as code);
* ``module`` -- ``module:application`` if the module has it, else ``module:app``.

Every expected failure raises :class:`AppLoadError` with a one-line message: the module
is not found; the module raised while importing (the original exception's type, message
and where it was raised); a syntax error (file:line); a missing attribute; a factory
that raised; a result that is not callable.  The original exception is chained as
``__cause__`` for whoever wants its traceback.  This module does not touch ``sys.path``
unless asked, with :func:`prepend_sys_path`.
"""

from __future__ import annotations

import ast
import importlib
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any


class AppLoadError(Exception):
    """The application cannot be loaded; ``str(error)`` is one line fit to show the user."""


def prepend_sys_path(path: str) -> None:
    """Put ``path`` first on ``sys.path`` (moving it there if it is already present)."""
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def describe_exception(e: BaseException) -> str:
    """``Type: message (at file:line)``, the place being the innermost real frame."""
    text = type(e).__name__
    message = _one_line(str(e))
    if message:
        text += f": {message}"
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith("<")]
    if frames:
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return text


_describe = describe_exception


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except SyntaxError as e:
        where = f"{e.filename}:{e.lineno}" if e.filename else name
        raise AppLoadError(f"syntax error in {where}: {e.msg}") from e
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            detail = "" if e.name == name else f" (no module named {e.name!r})"
            raise AppLoadError(
                f"module {name!r} not found{detail}; is it in the current directory "
                f"or on PYTHONPATH?") from e
        raise AppLoadError(f"error importing {name!r}: {_describe(e)}") from e
    except (Exception, SystemExit) as e:
        raise AppLoadError(f"error importing {name!r}: {_describe(e)}") from e


def _parse_expr(spec: str, expr: str) -> tuple[list[str], tuple | None, dict]:
    """Split ``a.b.factory(1, x=2)`` into (["a", "b", "factory"], (1,), {"x": 2});
    the args are ``None`` when there is no call."""
    bad = f"invalid application spec {spec!r}"
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise AppLoadError(f"{bad}: expected module:name or module:factory(...)")
    args: tuple | None = None
    kwargs: dict[str, Any] = {}
    if isinstance(node, ast.Call):
        try:
            if any(isinstance(a, ast.Starred) for a in node.args) or any(
                    k.arg is None for k in node.keywords):
                raise ValueError
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords
                      if k.arg is not None}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise AppLoadError(f"{bad}: factory arguments must be Python literals")
        node = node.func
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise AppLoadError(f"{bad}: expected module:name or module:factory(...)")
    names.append(node.id)
    names.reverse()
    return names, args, kwargs


def _valid_module_name(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def load_app(spec: str) -> Callable[..., Any]:
    """Import and return the application ``spec`` names (see the module docstring)."""
    module_name, sep, expr = spec.strip().partition(":")
    module_name, expr = module_name.strip(), expr.strip()
    if not _valid_module_name(module_name):
        raise AppLoadError(f"invalid application spec {spec!r}: expected module:name, "
                           f"where module is a dotted Python module name")
    if sep and not expr:
        raise AppLoadError(f"invalid application spec {spec!r}: nothing after ':'")
    names, args, kwargs = _parse_expr(spec, expr) if sep else ([], None, {})
    module = _import(module_name)

    if not sep:
        for candidate in ("application", "app"):
            if hasattr(module, candidate):
                obj = getattr(module, candidate)
                where = f"{module_name}:{candidate}"
                break
        else:
            raise AppLoadError(f"module {module_name!r} has neither 'application' nor "
                               f"'app'; name the application, as in {module_name}:app")
    else:
        obj = module
        where = module_name
        for i, name in enumerate(names):
            try:
                obj = getattr(obj, name)
            except AttributeError:
                owner = f"module {module_name!r}" if i == 0 else repr(where)
                raise AppLoadError(f"{owner} has no attribute {name!r}")
            where = f"{where}{':' if i == 0 else '.'}{name}"
        if args is not None:
            if not callable(obj):
                raise AppLoadError(f"{where!r} is not callable (it is of type "
                                   f"{type(obj).__name__}), so it cannot be a factory")
            try:
                obj = obj(*args, **kwargs)
            except Exception as e:
                raise AppLoadError(f"calling {where}() failed: {_describe(e)}") from e
            where = f"{where}(...)"
            if not callable(obj):
                raise AppLoadError(f"{where!r} returned an object of type "
                                   f"{type(obj).__name__}, which is not callable, so not "
                                   f"a WSGI application")
            return obj

    if not callable(obj):
        raise AppLoadError(f"{where!r} is not callable (it is of type {type(obj).__name__}), "
                           f"so not a WSGI application")
    return obj
