"""Test-session setup shared by every test module."""

from __future__ import annotations

import os

# Variables wsgiloop reads as settings.  A machine that happens to set them (a hosting
# platform's PORT or WEB_CONCURRENCY, a developer's WSGILOOP_WORKERS, systemd's
# LISTEN_FDS) would change what the servers started by the tests do; each test sets what
# it needs itself.
for _name in list(os.environ):
    if _name.startswith(("WSGILOOP_", "LISTEN_")) or _name in ("PORT", "WEB_CONCURRENCY",
                                                               "GUNICORN_CMD_ARGS"):
        del os.environ[_name]
