"""``--reload`` for development: notice edited source files so the master can reload.

:class:`SourceWatcher` watches the ``.py`` files under some directories, and any extra
files named: with ``watchfiles`` (engine ``inotify``) a thread waits for the kernel's
notifications; with engine ``poll`` the modification times are compared each second.
:meth:`SourceWatcher.changes` returns the files changed since the last call;
:func:`syntax_error` says whether a changed file would not even compile, so the master
can keep the old workers serving until the file is fixed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable

_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".tox", ".mypy_cache",
              ".pytest_cache", ".ruff_cache", "site-packages"}


class SourceWatcher:
    """Changed ``.py`` files under ``roots`` and changed ``extra_files``; ``wake`` is
    called when one changes.  ``engine``: ``inotify`` (watchfiles, which must be
    installed), ``poll``, or ``auto`` (inotify when watchfiles is installed)."""

    def __init__(self, roots: Iterable[str], interval: float = 1.0,
                 wake: Callable[[], None] | None = None, engine: str = "auto",
                 extra_files: Iterable[str] = ()) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.extra_files = {os.path.abspath(f) for f in extra_files}
        self.interval = interval
        self.wake = wake
        self._mtimes = self._scan()
        self._next_scan = time.monotonic() + interval
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        watchfiles = None
        if engine != "poll":
            try:
                import watchfiles  # optional: kernel notifications instead of polling
            except ImportError:
                if engine == "inotify":
                    raise
        if watchfiles is not None:
            self._thread = threading.Thread(target=self._watch, args=(watchfiles,),
                                            name="wsgiloop-reloader", daemon=True)
            self._thread.start()

    @property
    def engine(self) -> str:
        """The engine in use: ``inotify`` or ``poll``."""
        return "inotify" if self._thread is not None else "poll"

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
        for path in self.extra_files:
            try:
                mtimes[path] = os.stat(path).st_mtime_ns
            except OSError:
                pass
        return mtimes

    def _watched(self, path: str) -> bool:
        """An extra file, or a .py file under a root outside the skipped directories."""
        if path in self.extra_files:
            return True
        if not path.endswith(".py"):
            return False
        for root in self.roots:
            prefix = os.path.join(root, "")  # "/srv/app/" (and "/" for the root itself)
            if path.startswith(prefix):
                below = path[len(prefix):].split(os.sep)[:-1]
                return not _SKIP_DIRS.intersection(below)
        return False

    def _watch(self, watchfiles: object) -> None:
        # The directories of extra files outside the roots are watched too (a file
        # replaced by an editor's rename is only seen through its directory).
        dirs = set(self.roots) | {os.path.dirname(f) for f in self.extra_files}
        watched = sorted(d for d in dirs if os.path.isdir(d))
        for changes in watchfiles.watch(*watched):  # type: ignore[attr-defined]
            paths = {path for _, path in changes if self._watched(path)}
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
    """``"file:line: message"`` when the Python file ``path`` does not compile, else None
    (also for other files, which are not Python)."""
    if not path.endswith(".py"):
        return None
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
