"""nginx for the tests that put it in front of wsgiloop (tests/test_behind_nginx.py,
tests/test_deploy.py): the main configuration every such nginx runs with, its files under
a prefix directory of the test's, whatever the ``http`` block then holds."""

from __future__ import annotations

import os
from pathlib import Path

NGINX = "/usr/sbin/nginx"


def write_nginx_conf(prefix: Path, http: str, worker_connections: int) -> Path:
    """``prefix/nginx.conf``: one worker (root's, when the tests run as root), pid, error
    log (``prefix/error.log``), access log and temp directories under ``prefix``, and
    ``http`` (directives, at the http block's indentation) in its http block."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / sub).mkdir(parents=True, exist_ok=True)
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix / "error.log"} info;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
{http}
}}
""")
    return conf
