"""Keeps the layer table of docs/architecture.md true: each module imports only from
the layers below it, and inside a package only the modules before it in the package's
order (and never creates loops, threads or sockets at import)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "wsgiloop"

# Bottom-up; a module may import modules of its own layer or of layers listed before it.
LAYERS = [
    # __init__ holds only the version, which any layer may read.
    {"__init__", "ioloop", "aio", "threadbridge"},
    {"iostream", "tlsstream", "netutil"},
    {"http"},
    {"params", "delegate", "server", "httpserver", "logformat", "accesslog", "spool", "body"},
    {"wsgi"},
    {"web"},
    {"metrics"},
    {"workers"},
    {"serving", "request_hooks"},
    {"config", "logsetup", "loader", "cli", "testing", "__main__"},
]


# Inside a package, bottom-up: a module may import only the modules listed before it.
# Imports under ``if TYPE_CHECKING:`` (for annotations only) do not count here.
PACKAGE_ORDER = {
    "http": ["errors", "limits", "hosts", "proxies", "response", "parser", "httptools_parser",
             "backends", "websocket", "__init__"],
    "web": ["errors", "httputil", "signing", "routing", "request", "handler", "websocket",
            "static",
            "mount", "inprocess", "application", "__init__"],
    "wsgi": ["environ", "threads", "gateway", "__init__"],
    "config": ["base", "validators", "table", "gunicorn", "sources", "docs", "__init__",
               "__main__"],
    "workers": ["oom", "hooks", "worker", "reloader", "arbiter", "__init__"],
    "metrics": ["block", "statsd", "recorder", "endpoint", "master", "__init__"],
}


def _layer_of(module: str) -> int:
    top = module.split(".")[0]
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"module {module!r} is in no layer; add it to LAYERS and the doc")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    path = PACKAGE.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST, with_type_checking: bool) -> list[ast.AST]:
    """Every import statement, anywhere (function bodies too)."""
    found = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if _is_type_checking(node) and not with_type_checking:
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def _internal_imports(path: Path, module: str, with_type_checking: bool = True) -> set[str]:
    """The wsgiloop modules ``module`` imports, dotted below ``wsgiloop`` (a package as
    its name: ``web``; a module of it as ``web.handler``)."""
    tree = ast.parse(path.read_text())
    found = set()
    package_parts = module.split(".")[:-1]  # a package's own __init__ is "package.__init__"
    for node in _import_nodes(tree, with_type_checking):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("wsgiloop"):
                target = node.module.removeprefix("wsgiloop").lstrip(".")
            else:
                continue
            for alias in node.names:  # "from . import x": x may be a module
                dotted = f"{target}.{alias.name}" if target else alias.name
                if _is_module(dotted):
                    found.add(dotted)
                elif target:
                    found.add(target)
                else:
                    found.add("__init__")  # a name from wsgiloop/__init__.py
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("wsgiloop."):
                    found.add(alias.name.removeprefix("wsgiloop."))
    return {f for f in found if f}


def test_every_module_imports_only_lower_layers():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        own = _layer_of(module)
        for target in _internal_imports(path, module):
            if target.split(".")[0] == module.split(".")[0]:
                continue
            if _layer_of(target) > own:
                violations.append(f"{module} imports {target}")
    assert not violations, "layer violations:\n" + "\n".join(violations)


def test_modules_inside_a_package_import_only_modules_before_them():
    violations = []
    for package, order in PACKAGE_ORDER.items():
        present = sorted(p.stem for p in (PACKAGE / package).glob("*.py"))
        unlisted = [name for name in present if name not in order]
        assert not unlisted, f"{package}/: add {unlisted} to PACKAGE_ORDER and the doc"
        for name in present:
            path = PACKAGE / package / f"{name}.py"
            for target in _internal_imports(path, f"{package}.{name}", False):
                parts = target.split(".")
                if parts[0] != package:
                    continue
                imported = parts[1] if len(parts) > 1 else "__init__"
                if order.index(imported) >= order.index(name):
                    violations.append(f"{package}/{name} imports {package}/{imported}")
    assert not violations, "import order violations:\n" + "\n".join(violations)


def test_web_routing_is_generic():
    """routing knows neither handlers, nor mounts, nor the WSGI gateway; only mount
    imports the gateway."""
    routing = _internal_imports(PACKAGE / "web" / "routing.py", "web.routing")
    assert not {t for t in routing if t.split(".")[0] in ("web", "wsgi")}, routing
    for path in (PACKAGE / "web").glob("*.py"):
        if path.stem != "mount":
            imports = _internal_imports(path, f"web.{path.stem}")
            assert "wsgi" not in imports, f"web/{path.name} imports wsgi"


def test_http_layer_is_sans_io():
    for path in (PACKAGE / "http").rglob("*.py"):
        text = path.read_text()
        for forbidden in ("import socket", "import select", "ioloop", "iostream"):
            assert forbidden not in text, f"{path.name} mentions {forbidden!r}"


def test_import_has_no_side_effects():
    code = (
        "import threading, wsgiloop, wsgiloop.cli, wsgiloop.serving, wsgiloop.wsgi, "
        "wsgiloop.server, wsgiloop.ioloop, wsgiloop.iostream, wsgiloop.netutil;"
        "assert threading.active_count() == 1, threading.enumerate();"
        "import os; fds = os.listdir('/proc/self/fd'); print(len(fds))"
    )
    count_fds = "import os; print(len(os.listdir('/proc/self/fd')))"
    baseline = subprocess.run([sys.executable, "-c", count_fds],
                              capture_output=True, text=True, check=True).stdout
    after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=PACKAGE.parent).stdout
    assert int(after) == int(baseline), "importing wsgiloop opened file descriptors"
