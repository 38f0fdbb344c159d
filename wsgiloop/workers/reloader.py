"""``--reload`` for development: notice edited source files so the master can reload.

:class:`SourceWatcher` polls the modification times of the ``.py`` files under some
directories (with ``watchfiles``, when installed, it waits for the kernel's notification
instead, on a thread).  :meth:`SourceWatcher.changes` returns the files changed since the
last call; :func:`syntax_error` says whether a changed file would not even compile, so the
master can keep the old workers serving until the file is fixed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable

_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".tox", ".mypy_cache",
              ".pytest_cache", ".ruff_cache", "site-packages"}


class SourceWatcher:
    """Changed ``.py`` files under ``roots``; ``wake`` is called when one changes."""

    def __init__(self, roots: Iterable[str], interval: float = 1.0,
                 wake: Callable[[], None] | None = None) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.interval = interval
        self.wake = wake
        self._mtimes = self._scan()
        self._next_scan = time.monotonic() + interval
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            import watchfiles  # optional: kernel notifications instead of polling
        except ImportError:
            watchfiles = None
        if watchfiles is not None:
            self._thread = threading.Thread(target=self._watch, args=(watchfiles,),
                                            name="wsgiloop-reloader", daemon=True)
            self._thread.start()

    def _scan(self) -> dict[str, float]:
        mtimes = {}
        for root in self.roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
                for name in filenames:
                    if name.endswith(".py"):
                        path = os.path.join(dirpath, name)
                        try:
                            mtimes[path] = os.stat(path).st_mtime_ns
                        except OSError:
                            pass
        return mtimes

    def _watch(self, watchfiles: object) -> None:
        for changes in watchfiles.watch(*self.roots):  # type: ignore[attr-defined]
            paths = {path for _, path in changes if path.endswith(".py")}
            if paths:
                with self._lock:
                    self._pending |= paths
                if self.wake is not None:
                    self.wake()

    def changes(self) -> list[str]:
        """Files changed (added, edited or removed) since the last call."""
        if self._thread is not None:
            with self._lock:
                pending, self._pending = self._pending, set()
            return sorted(pending)
        now = time.monotonic()
        if now < self._next_scan:
            return []
        self._next_scan = now + self.interval
        mtimes = self._scan()
        changed = {p for p, m in mtimes.items() if self._mtimes.get(p) != m}
        changed |= set(self._mtimes) - set(mtimes)
        self._mtimes = mtimes
        return sorted(changed)


def syntax_error(path: str) -> str | None:
    """``"file:line: message"`` when ``path`` does not compile, else None."""
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError:
        return None  # removed: let the workers find out
    try:
        compile(source, path, "exec")
    except SyntaxError as exc:
        return f"{path}:{exc.lineno}: {exc.msg}"
    except ValueError as exc:
        return f"{path}: {exc}"
    return None
