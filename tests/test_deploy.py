"""The deployment guide's files (``deploy/``), each exercised for real where it can be.

* ``docs/deploy.md`` shows each file of ``deploy/`` verbatim: its code blocks are compared
  with the files, so what the guide shows is what these tests run.
* systemd: both units pass ``systemd-analyze verify``; the service's exact ``ExecStart``
  line runs under ``systemd-socket-activate`` on the socket unit's address (its port
  swapped for a free one) and serves a real request; its ``ExecReload`` command brings a
  new generation of workers without failing a request; ``KillSignal`` stops it, exit 0.
  A restart keeps the socket (as the socket unit does): a request sent while no
  wsgiloop runs is answered by the next one.
* nginx and HAProxy run the guide's files, with only their addresses (and HAProxy's
  health-check port) swapped for free ones.
* Dockerfile: without a Docker daemon or registry here, its instructions run as written
  in a throwaway directory (ENV, WORKDIR, COPY, RUN, USER, CMD), the image's absolute
  directories relocated under it: the venv is built, the app installed offline from a
  wheel of this checkout, and CMD serves as the image's non-root user on ``$PORT``, as
  PID 1 of a pid namespace (when the test runs as root), and stops on TERM.
* Kubernetes: the manifest parses, its ports, probes and grace period agree with the
  wsgiloop command it runs, and that command's flags are accepted by
  ``wsgiloop --check-config``.

Every program driven here (systemd's tools, nginx, haproxy) is installed by
scripts/setup.sh; a missing one fails its test rather than skipping it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wsframes
import yaml
from nginx_support import NGINX, write_nginx_conf
from support import ROOT, ServerProcess, free_port, server_env, terminate, wait_listening

from wsgiloop.testing import LiveServer

DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"

#: The application every file of deploy/ serves (``myapp:app``): it answers what a
#: deployment test wants to see, as JSON.
MYAPP = '''
import hashlib
import json
import os
import sys
import time


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/sleep/"):  # /sleep/SECONDS: a request still running
        open("sleeping", "w").close()  # (in the working directory) says it started
        time.sleep(float(path[len("/sleep/"):]))
    if path.startswith("/bytes/"):  # /bytes/N: N bytes of a known pattern
        size = int(path[len("/bytes/"):])
        body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    else:
        data = environ["wsgi.input"].read()
        body = json.dumps({
            "pid": os.getpid(), "master": os.getppid(), "uid": os.getuid(),
            "gid": os.getgid(), "path": path,
            "remote_addr": environ["REMOTE_ADDR"], "remote_port": environ.get("REMOTE_PORT"),
            "scheme": environ["wsgi.url_scheme"], "host": environ.get("HTTP_HOST"),
            "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"), "cwd": os.getcwd(),
            "can_write_code": os.access(os.path.dirname(os.path.abspath(__file__)), os.W_OK),
            "prefix": sys.prefix, "body_length": len(data),
            "body_sha256": hashlib.sha256(data).hexdigest(),
        }).encode()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def require(program: str, package: str) -> None:
    if not os.path.exists(program):
        pytest.fail(f"{program} is required for this test but missing: install it with "
                    f"`apt-get install -y {package}` (scripts/setup.sh does)", pytrace=False)


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """A directory holding ``myapp.py``, readable by any user (pytest's tmp_path is not)."""
    directory = Path(tempfile.mkdtemp(prefix="wsgiloop-deploy-", dir="/tmp"))
    os.chmod(directory, 0o755)
    (directory / "myapp.py").write_text(MYAPP)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def get_json(port: int, path: str = "/", timeout: float = 20.0,
             headers: dict | None = None) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return json.loads(body)
    finally:
        conn.close()


# -- docs/deploy.md shows the files as they are ------------------------------------------


def guide_blocks() -> list[tuple[str, str]]:
    """The code blocks of docs/deploy.md that show a file of deploy/: the first block
    after a link to ``deploy/NAME``, as (NAME, text)."""
    return re.findall(r"\[`?deploy/([\w.-]+)`?\]\([^)]*\)(?:(?!```).)*?^```[\w-]*\n(.*?)^```",
                      GUIDE.read_text(), re.S | re.M)


def test_the_guide_shows_every_deploy_file_verbatim() -> None:
    files = sorted(p.name for p in DEPLOY.iterdir() if p.is_file())
    shown = guide_blocks()
    assert sorted(name for name, _ in shown) == files, (
        "each file of deploy/ is shown once in docs/deploy.md")
    blocks = dict(shown)
    for name in files:
        assert blocks[name] == (DEPLOY / name).read_text(), (
            f"docs/deploy.md's copy of deploy/{name} differs from the file")


def test_the_readme_links_the_guide() -> None:
    assert "(docs/deploy.md)" in (ROOT / "README.md").read_text()


# -- systemd -----------------------------------------------------------------------------


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file of deploy/ as {section: {key: [values...]}}."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_start() -> list[str]:
    """The service's ExecStart, as argv."""
    (line,) = unit("wsgiloop.service")["Service"]["ExecStart"]
    return shlex.split(line)


def socket_address() -> tuple[str, int]:
    (listen,) = unit("wsgiloop.socket")["Socket"]["ListenStream"]
    host, _, port = listen.rpartition(":")
    return host, int(port)


def as_run_here(argv: list[str]) -> list[str]:
    """ExecStart's argv with its wsgiloop (the deployment's venv) replaced by this
    checkout's, run by this interpreter; every argument stays as written."""
    assert argv[0].endswith("/bin/wsgiloop"), argv
    return [sys.executable, "-m", "wsgiloop", *argv[1:]]


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own checker finds nothing wrong but the deployment's venv missing here."""
    require(SYSTEMD_ANALYZE, "systemd")
    for name in ("wsgiloop.socket", "wsgiloop.service"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "wsgiloop.socket"),
         str(tmp_path / "wsgiloop.service")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and f"Command {exec_start()[0]} is not executable" not in line]
    assert not complaints, "\n".join(complaints)


def test_unit_settings_agree() -> None:
    service = unit("wsgiloop.service")["Service"]
    argv = exec_start()
    graceful = float(argv[argv.index("--graceful-timeout") + 1])
    assert float(service["TimeoutStopSec"][0]) > graceful, (
        "systemd must not KILL a master still draining within --graceful-timeout")
    assert service["KillSignal"] == ["SIGTERM"] and service["KillMode"] == ["mixed"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert "--bind" not in argv and "-b" not in argv, "the socket comes from the socket unit"
    assert unit("wsgiloop.service")["Unit"]["Requires"] == ["wsgiloop.socket"]


class SocketActivated:
    """``systemd-socket-activate -l HOST:PORT ARGV``: it binds at once, and execs ARGV
    (keeping its pid) when the first connection arrives."""

    def __init__(self, address: str, argv: list[str], cwd: Path, env: dict) -> None:
        require(SOCKET_ACTIVATE, "systemd")
        self.log_path = cwd / "service.log"
        self._log = open(self.log_path, "wb")
        setenv = [f"--setenv={key}={value}" for key, value in env.items()]
        self.proc = subprocess.Popen([SOCKET_ACTIVATE, "--listen", address, *setenv, *argv],
                                     cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_for(f"Listening on {address}")
        except AssertionError:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log()}"
            time.sleep(0.02)

    def stop(self) -> None:
        terminate(self.proc, timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what a killed master left
        self._log.close()


def test_socket_activation_serves_reloads_and_stops(app_dir: Path) -> None:
    """The ExecStart line as written, given the socket unit's socket (on a free port):
    wsgiloop binds nothing itself (its default 127.0.0.1:8000 is not where we ask), the
    first request starts it and is answered; ExecReload's HUP swaps the workers while
    requests keep being answered; SIGTERM ends it with status 0."""
    host, _ = socket_address()
    port = free_port()
    service = unit("wsgiloop.service")["Service"]
    env = dict(v.split("=", 1) for v in service.get("Environment", []))
    env["PYTHONPATH"] = server_env()["PYTHONPATH"]
    activated = SocketActivated(f"{host}:{port}", as_run_here(exec_start()), app_dir, env)
    try:
        first = get_json(port, "/hello")  # starts wsgiloop, waiting in the backlog
        assert first["path"] == "/hello" and first["cwd"] == str(app_dir)
        master = activated.proc.pid  # systemd-socket-activate exec'd wsgiloop in place
        activated.wait_for(f"Listening at: http://{host}:{port} ({master})")
        old_workers = {get_json(port)["pid"] for _ in range(8)}

        reload_cmd = shlex.split(service["ExecReload"][0].replace("$MAINPID", str(master)))
        subprocess.run(reload_cmd, check=True, timeout=10)
        deadline = time.monotonic() + 30
        seen = set()
        while not (seen - old_workers):  # every request in between is answered
            assert time.monotonic() < deadline, ("no new worker after HUP:\n"
                                                 + activated.log())
            seen.add(get_json(port)["pid"])
        assert activated.proc.poll() is None

        kill_signal = getattr(signal, service["KillSignal"][0])
        activated.proc.send_signal(kill_signal)
        assert activated.proc.wait(float(service["TimeoutStopSec"][0])) == 0, activated.log()
    finally:
        activated.stop()


@pytest.mark.parametrize("passed_as", ["LISTEN_FDS", "--fd"])
def test_a_restart_keeps_the_socket(app_dir: Path, passed_as: str) -> None:
    """What the socket unit buys: systemd holds the listening socket across a restart,
    so a client connecting while no wsgiloop runs waits in the backlog and is answered
    by the next one.  Here the test holds the socket, as systemd would, and passes it to
    each run of the ExecStart line as fd 3: with LISTEN_FDS=1 and LISTEN_PID its pid,
    as systemd does, or with ``--fd 3`` added, as another supervisor would."""
    host, _ = socket_address()
    listener = socket.create_server((host, 0), backlog=128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # What the supervisor does between fork and exec: the socket to fd 3 (and systemd's
    # variables).
    variables = "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
    launcher = [sys.executable, "-c", (
        f"import os, sys; os.dup2({fd}, 3); {fd} == 3 or os.close({fd}); "
        f"{variables if passed_as == 'LISTEN_FDS' else ''}"
        "os.execv(sys.argv[1], sys.argv[1:])")]
    argv = as_run_here(exec_start())
    extra = ["--fd", "3"] if passed_as == "--fd" else []

    def start() -> ServerProcess:
        return ServerProcess(None, *argv[3:], *extra, launcher=launcher + argv[:3],
                             bind=None, cwd=app_dir, pass_fds=[fd])  # type: ignore[arg-type]
    try:
        with start() as first:
            assert first.port == port
            assert get_json(port)["path"] == "/"
            assert first.stop() == 0
        waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        waiting.request("GET", "/while-restarting")  # accepted by the kernel, unanswered
        with start() as second:
            resp = waiting.getresponse()
            assert resp.status == 200, second.log
            assert json.loads(resp.read())["path"] == "/while-restarting"
        waiting.close()
    finally:
        listener.close()


# -- nginx and HAProxy in front ----------------------------------------------------------

HAPROXY = "/usr/sbin/haproxy"


def swap(text: str, old: str, new: str) -> str:
    """``text`` with ``old``, which must be there exactly once, replaced by ``new``."""
    assert text.count(old) == 1, f"expected {old!r} once in the snippet"
    return text.replace(old, new)


def pattern(size: int) -> bytes:
    """What myapp's /bytes/SIZE answers."""
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


def wsgiloop_as_in_the_unit(app_dir: Path, *extra: str) -> ServerProcess:
    """The service's ExecStart (this checkout's wsgiloop), bound to a free port of
    127.0.0.1 instead of the socket unit's socket."""
    argv = as_run_here(exec_start())
    return ServerProcess(None, *argv[3:], *extra, launcher=argv[:3],  # type: ignore[arg-type]
                         cwd=app_dir)


def request(port: int, method: str = "GET", path: str = "/", body: bytes | None = None,
            headers: dict | None = None, source: str = "127.0.0.1") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class NginxWithSnippet:
    """nginx in the foreground, unprivileged files under ``prefix``, with ``snippet``
    included in its http block as /etc/nginx/conf.d/ would."""

    def __init__(self, prefix: Path, snippet: str) -> None:
        require(NGINX, "nginx")
        (prefix / "myapp.conf").write_text(snippet)
        self.error_log = prefix / "error.log"
        conf = write_nginx_conf(prefix, f"    include {prefix}/myapp.conf;",
                                worker_connections=256)
        command = [NGINX, "-c", str(conf), "-p", str(prefix), "-e", str(self.error_log)]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=20)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen([*command, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def log(self) -> str:
        return self.error_log.read_text(errors="replace")

    def errors(self) -> list[str]:
        return [line for line in self.log().splitlines()
                if any(f"[{level}]" in line for level in ("error", "crit", "alert", "emerg"))]

    def stop(self) -> None:
        terminate(self.proc)


def deploy_nginx_in_front_of(backend_port: int, prefix: Path) -> tuple[NginxWithSnippet, int]:
    """deploy/nginx.conf, its upstream swapped for ``backend_port`` and its listen
    address for a free port, running and listening: the nginx and that port (the
    caller stops it)."""
    port = free_port()
    snippet = (DEPLOY / "nginx.conf").read_text()
    snippet = swap(snippet, "server 127.0.0.1:8000 ", f"server 127.0.0.1:{backend_port} ")
    snippet = swap(snippet, "listen 80;", f"listen 127.0.0.1:{port};")
    nginx = NginxWithSnippet(prefix, snippet)
    wait_listening(nginx.proc, [port], "nginx", details=nginx.log, stop=nginx.stop)
    return nginx, port


def nginx_directive(name: str) -> str:
    """The value of the one ``name`` directive in deploy/nginx.conf."""
    (value,) = re.findall(rf"^\s*{name}\s+([^;]+);", (DEPLOY / "nginx.conf").read_text(),
                          re.M)
    return value


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    assert m, text
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_nginx_closes_idle_upstream_connections_before_wsgiloop() -> None:
    """nginx must never pick a kept-alive connection that wsgiloop is closing: its idle
    upstream timeout is below the --keep-alive of the commands it sits in front of."""
    nginx_idle = seconds(nginx_directive("keepalive_timeout"))
    assert nginx_idle < float(flag(exec_start(), "--keep-alive"))
    assert nginx_idle < float(flag(k8s_command(), "--keep-alive"))


def test_nginx_snippet_in_front_of_wsgiloop(app_dir: Path, tmp_path: Path) -> None:
    """deploy/nginx.conf, its upstream and listen addresses swapped for free ones, in
    front of the service's wsgiloop command (which trusts 127.0.0.1 by default)."""
    with wsgiloop_as_in_the_unit(app_dir) as backend:
        nginx, port = deploy_nginx_in_front_of(backend.port, tmp_path)
        try:
            # The client's address, whatever it claims; the Host it asked for.
            status, body = request(port, path="/who", source="127.0.0.3", headers={
                "X-Forwarded-For": "6.6.6.6", "Host": "shop.example:8443"})
            assert status == 200, body
            seen = json.loads(body)
            assert seen["remote_addr"] == "127.0.0.3"
            assert seen["x_forwarded_for"] == "6.6.6.6, 127.0.0.3"
            assert (seen["scheme"], seen["host"]) == ("http", "shop.example")

            # Keep-alive upstream: separate clients, one connection from nginx to wsgiloop.
            ports = {json.loads(request(port)[1])["remote_port"] for _ in range(5)}
            assert len(ports) == 1, f"nginx opened {len(ports)} connections to wsgiloop"

            # Buffered both ways: a 5 MiB upload, an 8 MiB download.
            upload = pattern(5 * 1024 * 1024 + 7)
            status, body = request(port, "POST", "/upload", body=upload)
            assert status == 200, body
            assert json.loads(body)["body_sha256"] == hashlib.sha256(upload).hexdigest()
            status, body = request(port, path=f"/bytes/{8 * 1024 * 1024 + 3}")
            assert status == 200 and body == pattern(8 * 1024 * 1024 + 3)
            # Over client_max_body_size: nginx refuses it, wsgiloop never sees it.
            status, _ = request(port, "POST", "/upload", body=b"x" * (21 * 1024 * 1024))
            assert status == 413
        finally:
            nginx.stop()
        problems = [e for e in nginx.errors() if "client intended to send too large" not in e]
        assert not problems, "\n".join(problems)
    assert "/upload" in backend.stdout and backend.stdout.count("POST /upload") == 1


def test_nginx_snippet_carries_websockets(tmp_path: Path) -> None:
    """deploy/nginx.conf in front of a native application: a WebSocket handshake is
    passed on with its Upgrade (nginx drops hop-by-hop headers unless told), messages
    go both ways, and a plain request still gets its answer."""
    with ServerProcess("websocket_apps:application") as backend:
        nginx, port = deploy_nginx_in_front_of(backend.port, tmp_path)
        try:
            client = wsframes.RawClient("127.0.0.1", port, "/echo/proxied")
            try:
                assert client.status == 101, client.status_line
                client.send(wsframes.frame(wsframes.TEXT, b"through nginx"))
                assert client.read_message() == (wsframes.TEXT, b"through nginx")
                client.send(wsframes.close_frame(1000))
                assert client.read_message()[0] == wsframes.CLOSE
            finally:
                client.close()
            assert request(port, path="/events")[0] == 200
        finally:
            nginx.stop()
        assert not nginx.errors(), "\n".join(nginx.errors())


class HAProxyWithConfig:
    """HAProxy in the foreground (``-db``) with ``config``, output in ``directory``."""

    def __init__(self, directory: Path, config: str) -> None:
        require(HAPROXY, "haproxy")
        conf = directory / "haproxy.cfg"
        conf.write_text(config)
        check = subprocess.run([HAPROXY, "-c", "-f", str(conf)], capture_output=True,
                               text=True, timeout=20)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log_path = directory / "haproxy.out"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(conf)], stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.proc)
        self._log.close()


def test_haproxy_config_is_valid() -> None:
    require(HAPROXY, "haproxy")
    check = subprocess.run([HAPROXY, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
                           capture_output=True, text=True, timeout=20)
    assert check.returncode == 0, check.stdout + check.stderr


def test_haproxy_balances_two_hosts_and_drains_one(app_dir: Path, tmp_path: Path) -> None:
    """deploy/haproxy.cfg over two wsgiloop "hosts" (its addresses and health-check ports
    swapped for free ones): the client's address arrives in the PROXY v2 header, a
    spoofed X-Forwarded-For is dropped; then one host is TERMed: its /readyz fails,
    HAProxy takes it out, and no request fails meanwhile."""
    hosts, metrics = [], [free_port(), free_port()]
    try:
        for m in metrics:
            hosts.append(ServerProcess(
                "myapp:app", "--workers", "2", "--proxy-protocol", "--graceful-timeout", "10",
                "--metrics-bind", f"127.0.0.1:{m}", cwd=app_dir))
        port = free_port()
        config = (DEPLOY / "haproxy.cfg").read_text()
        config = swap(config, "bind :80", f"bind 127.0.0.1:{port}")
        for name, address, host, m in zip(("app1", "app2"), ("10.0.0.11", "10.0.0.12"),
                                           hosts, metrics, strict=True):
            config = swap(config, f"server {name} {address}:8000 check port 9100",
                          f"server {name} 127.0.0.1:{host.port} check port {m}")
        haproxy = HAProxyWithConfig(tmp_path, config)
        try:
            wait_listening(haproxy.proc, [port], "haproxy", details=haproxy.output,
                           stop=haproxy.stop)
            status, body = request(port, path="/who", source="127.0.0.3",
                                   headers={"X-Forwarded-For": "6.6.6.6"})
            assert status == 200, (body, haproxy.output())
            seen = json.loads(body)
            assert (seen["remote_addr"], seen["x_forwarded_for"]) == ("127.0.0.3", None)
            assert seen["scheme"] == "http"

            masters, deadline = set(), time.monotonic() + 30
            while masters != {host.pid for host in hosts}:
                assert time.monotonic() < deadline, "HAProxy did not use both hosts"
                masters.add(json.loads(request(port)[1])["master"])

            hosts[0].signal(signal.SIGTERM)  # draining: /readyz says 503 at once
            failures, deadline = [], time.monotonic() + 30
            while "wsgiloop/app1 is DOWN" not in haproxy.output() or hosts[0].running:
                assert time.monotonic() < deadline, haproxy.output() + hosts[0].log
                status, body = request(port)
                if status != 200:
                    failures.append((status, body))
            assert not failures, failures
            assert hosts[0].wait() == 0
            for _ in range(5):
                assert json.loads(request(port)[1])["master"] == hosts[1].pid
        finally:
            haproxy.stop()
    finally:
        for host in hosts:
            host.stop()


# -- Kubernetes --------------------------------------------------------------------------


def k8s_documents() -> dict[str, dict]:
    with open(DEPLOY / "k8s.yaml") as f:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(f)}


def k8s_container() -> dict:
    (container,) = k8s_documents()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def k8s_command() -> list[str]:
    command = k8s_container()["command"]
    assert all(isinstance(word, str) for word in command), "quote numbers in YAML"
    return command


def test_k8s_manifest_agrees_with_its_command() -> None:
    from wsgiloop.config import load_settings

    docs = k8s_documents()
    deployment, service = docs["Deployment"], docs["Service"]
    pod = deployment["spec"]["template"]
    container = k8s_container()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"][
        "labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()

    command = k8s_command()
    assert command[0] == "wsgiloop"
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    settings, app = load_settings(command[1:], env, cwd=str(ROOT))
    assert app == "myapp:app"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    # The app's port comes from PORT, as gunicorn's does: 0.0.0.0:$PORT.
    assert settings.bind == [f"0.0.0.0:{env['PORT']}"]
    assert ports["http"] == int(env["PORT"])
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)

    # Probes on --metrics-bind, never on the app's port.
    metrics_port = int(flag(command, "--metrics-bind").rpartition(":")[2])
    assert ports["metrics"] == metrics_port != ports["http"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}

    # The grace period covers the preStop sleep and the whole drain.
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(sleep[1]) + settings.graceful_timeout
    assert settings.graceful_timeout == float(flag(command, "--graceful-timeout"))

    # Non-root, as the image is: the Dockerfile's USER.
    user = pod["spec"]["securityContext"]
    assert user["runAsNonRoot"] is True
    assert f"USER {user['runAsUser']}:{user['runAsGroup']}" in dockerfile_lines()


def test_k8s_command_passes_check_config(app_dir: Path) -> None:
    """``wsgiloop --check-config`` with the manifest's command and environment: every
    flag is real and the app imports (a myapp:app stands in for yours)."""
    command = k8s_command()
    env = {e["name"]: e["value"] for e in k8s_container().get("env", [])}
    result = subprocess.run([sys.executable, "-m", "wsgiloop", *command[1:], "--check-config"],
                            cwd=app_dir, env=server_env(env), capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr) == (0, "")


# -- Dockerfile --------------------------------------------------------------------------


def dockerfile_lines() -> list[str]:
    """deploy/Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's $VAR / ${VAR} substitution."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))",
                  lambda m: env.get(m.group(1) or m.group(2), ""), value)


class ImageProcess(LiveServer):
    """The image's CMD, exactly: no arguments added."""

    forced_args = ()


@pytest.fixture
def image_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="wsgiloop-image-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_dockerfile_runs_as_written(image_root: Path, app_dir: Path) -> None:
    """No Docker daemon or registry here: the instructions run as written on this host,
    the image's directories (WORKDIR, absolute ENV values) relocated under a throwaway
    root, RUN through /bin/sh as root, CMD as the USER.  The build context is the
    project: myapp.py and a requirements.txt naming wsgiloop, which pip takes offline
    from a wheel of this checkout.  The container runs with PORT set, as a platform
    would: wsgiloop listens on 0.0.0.0:$PORT, as the user, from the venv, as PID 1 of
    its own pid namespace, and `docker stop`'s TERM ends it with status 0."""
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else \
        sys._base_executable  # type: ignore[attr-defined]
    shims = image_root / "shims"  # the base image's `python`
    shims.mkdir()
    (shims / "python").symlink_to(python)
    context = app_dir
    (context / "requirements.txt").write_text("wsgiloop\n")
    source = image_root / "source"
    shutil.copytree(ROOT / "wsgiloop", source / "wsgiloop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = image_root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=300)

    env = {"PATH": f"{shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": "/root",
           # Build-time only, like `docker build` behind a private index: pip offline.
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    build_only = {"PIP_NO_INDEX", "PIP_FIND_LINKS"}
    cwd, user, cmd, seen = image_root, None, None, []
    for line in dockerfile_lines():
        op, _, arg = line.partition(" ")
        seen.append(op)
        if op == "FROM":
            assert re.fullmatch(r"python:3\.\d+-slim", arg), arg
        elif op == "ENV":
            updates = {}
            for word in shlex.split(arg):
                key, _, value = word.partition("=")
                updates[key] = str(image_root) + value if value.startswith("/") else \
                    expand(value, env)
            env.update(updates)
        elif op == "WORKDIR":
            cwd = image_root / arg.lstrip("/") if arg.startswith("/") else cwd / arg
            cwd.mkdir(parents=True, exist_ok=True)
        elif op == "COPY":
            src, dest = shlex.split(arg)
            if src == ".":
                shutil.copytree(context, cwd / dest, dirs_exist_ok=True)
            else:
                shutil.copy(context / src, cwd / dest)
        elif op == "RUN":
            assert not re.search(r"(^|\s)/", arg), f"an absolute path escapes relocation: {arg}"
            assert user is None, "RUN as the unprivileged user: not handled here"
            subprocess.run(["/bin/sh", "-c", arg], cwd=cwd, env=env, check=True,
                           capture_output=True, timeout=300, umask=0o022)
        elif op == "USER":
            uid, gid = (int(n) for n in arg.split(":"))
            assert uid != 0 and gid != 0
            user = (uid, gid)
        elif op == "CMD":
            cmd = json.loads(arg)
        else:
            assert op in ("EXPOSE", "STOPSIGNAL"), f"instruction {op} is not handled here"
    assert seen.index("USER") < seen.index("CMD") and cmd and user
    assert env["PORT"] == "8000"

    # As root, run CMD as a container runtime does: PID 1 of a new pid namespace, as
    # USER.  Otherwise this test's own (unprivileged) user stands for USER.
    as_container = os.geteuid() == 0
    launcher = cmd[:1]
    if as_container:
        launcher = ["unshare", "--pid", "--fork", "--kill-child", "setpriv",
                    f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *launcher]
    port = free_port()
    run_env = {k: v for k, v in env.items() if k not in build_only} | {"PORT": str(port)}
    with ImageProcess(None, cmd[1:], launcher=launcher, cwd=cwd, env=run_env,
                      bind=None) as container:
        assert container.url == f"http://0.0.0.0:{port}"
        seen = get_json(port, "/in-the-container")
        # `docker stop`: TERM to the container's PID 1, from outside its namespace (the
        # kernel delivers it only if PID 1 handles TERM itself).
        master = container.proc.pid
        if as_container:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            master = int(children[0])
        os.kill(master, signal.SIGTERM)
        assert container.wait(30) == 0, container.log
    assert seen["path"] == "/in-the-container"
    assert seen["prefix"] == env["VIRTUAL_ENV"] and seen["cwd"] == str(cwd)
    assert seen["uid"] != 0
    if as_container:
        assert seen["master"] == 1, "the master is not the namespace's PID 1"
        assert (seen["uid"], seen["gid"]) == user
        assert seen["can_write_code"] is False


def status_of(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_k8s_command_drains_as_the_manifest_expects(app_dir: Path) -> None:
    """The manifest's command and environment (ports swapped for free ones), taken
    through a pod's end: ready on /readyz; at TERM (after preStop) /readyz turns 503 at
    once while /livez stays 200 (no restart mid-drain); the request in flight is
    answered; the master exits 0 within the grace period left after preStop."""
    container = k8s_container()
    pod = k8s_documents()["Deployment"]["spec"]["template"]["spec"]
    command = k8s_command()
    env = {e["name"]: e["value"] for e in container["env"]}
    env["PORT"] = str(free_port())
    metrics = free_port()
    command[command.index("--metrics-bind") + 1] = f"127.0.0.1:{metrics}"
    app_port = int(env["PORT"])
    probe = lambda kind: status_of(metrics, container[kind]["httpGet"]["path"])  # noqa: E731
    with ServerProcess(None, *command[1:], bind=None, cwd=app_dir, env=env) as server:
        deadline = time.monotonic() + 30
        while probe("readinessProbe") != 200:
            assert time.monotonic() < deadline, "never ready:\n" + server.log
            time.sleep(0.05)
        assert probe("livenessProbe") == 200

        in_flight: dict = {}

        def slow_request() -> None:
            in_flight["status"], in_flight["body"] = request(app_port, path="/sleep/3")

        thread = threading.Thread(target=slow_request)
        thread.start()
        deadline = time.monotonic() + 10
        while not (app_dir / "sleeping").exists():  # the app is running it
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.02)
        server.signal(signal.SIGTERM)  # the kubelet, once preStop's sleep is over
        deadline = time.monotonic() + 10
        while probe("readinessProbe") != 503:
            assert time.monotonic() < deadline, "still ready after TERM:\n" + server.log
            time.sleep(0.02)
        if thread.is_alive():
            assert probe("livenessProbe") == 200, "a draining pod must stay live"
        thread.join(30)
        assert in_flight["status"] == 200, in_flight
        preStop = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
        assert server.wait(pod["terminationGracePeriodSeconds"] - preStop) == 0, server.log
