"""Keeps the layer table of docs/architecture.md true: each module imports only from
the layers below it (and never creates loops, threads or sockets at import)."""

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
    {"iostream", "netutil"},
    {"http"},
    {"server", "httpserver", "accesslog", "spool"},
    {"wsgi"},
    {"web"},
    {"workers"},
    {"serving", "request_hooks"},
    {"config", "loader", "cli", "testing", "__main__"},
]


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


def _internal_imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    package_parts = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if not target:  # "from . import x": a module, or a name from __init__
                    for alias in node.names:
                        is_module = (PACKAGE / f"{alias.name}.py").exists() or \
                            (PACKAGE / alias.name).is_dir()
                        found.add(alias.name if is_module else "__init__")
                else:
                    found.add(target)
            elif node.module and node.module.startswith("wsgiloop"):
                found.add(node.module.removeprefix("wsgiloop").lstrip("."))
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
