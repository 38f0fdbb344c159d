"""Every code block in README.md and docs/*.md is run, so the docs cannot rot.

Every fenced block is a snippet, run in order, per document, in a fresh sandbox
directory that holds the stand-in modules the docs name (``myapp``, ``myproject.wsgi``,
``mysite.wsgi``, ``package.module``).  A block must name its language; ``text`` blocks
(drawings, sample output) are the only ones not run.

How a block is run:

* ``sh`` -- each command, by the rules of :func:`run_command`: ``wsgiloop``/``gunicorn``
  lines are checked with ``--check-config`` exactly as written and, unless they name an
  address or a pid file, served on a free port and asked for ``/``; ``python bench/...``
  lines are parsed by the script's own argument parser (a benchmark takes minutes, so
  it is not run); install lines are checked against pyproject.toml and apt's archive.
  A command no rule knows fails the test.
* ``nginx`` -- ``nginx -t`` (inside ``events {} http {}`` when the snippet is a
  ``server``/``upstream`` part; certificate paths pointed at a throwaway pair).
* anything else needs a comment on the line just above the fence saying what to do,
  ``<!-- snippet: ACTION; ACTION -->``, where an ACTION is ``file PATH`` (the block is
  that file of the sandbox), ``run COMMAND`` (a command, by the rules above, in the
  sandbox), ``check NAME`` (one of the end-to-end checks in :data:`CHECKS`) or
  ``covered-by tests/FILE.py::TEST`` for what needs a machine of its own (systemd as
  PID 1, a Docker daemon): that test, which must exist, does what the block does as
  closely as this machine allows (tests/test_deploy.py says how).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import ROOT, free_port, server_env, terminate, wait_listening

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser, as a package (the test extra has it)
    import tomli as tomllib

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)\s*$")
ANNOTATION = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->\s*$")
PYTHON = sys.executable
WSGILOOP = [PYTHON, "-m", "wsgiloop"]


@dataclass
class Snippet:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    actions: list[str]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """The fenced blocks of ``path``, with their annotations."""
    found: list[Snippet] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        annotation = ANNOTATION.match(lines[index - 1]) if index else None
        actions = [a.strip() for a in annotation.group(1).split(";")] if annotation else []
        found.append(Snippet(path, index + 1, opening.group(1),
                             "\n".join(lines[index + 1:end]) + "\n", actions))
        index = end + 1
    return found


# -- the sandbox -----------------------------------------------------------------------

STAND_INS = {
    "myapp.py": '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"myapp"]

application = app

def create_app(*args, **kwargs):
    return app
''',
    "myproject/__init__.py": "",
    "myproject/wsgi.py": "from myapp import app as application\n",
    "mysite/__init__.py": "",
    "mysite/wsgi.py": "from myapp import app as application\n",
    "package/__init__.py": "",
    "package/module.py": '''\
import types

from myapp import app

attr = types.SimpleNamespace(sub=app)
''',
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    for name, text in STAND_INS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for directory in ("static", "staticfiles", "deploy"):
        (tmp_path / directory).mkdir()
    return tmp_path


def sandbox_env(cwd: Path, extra: dict | None = None) -> dict:
    """The environment of a documented command: the tests' (the checkout first on the
    path), with the Django example's database in the sandbox."""
    return server_env({"DJANGO_SITE_DB": str(cwd / "db.sqlite3"), **(extra or {})})


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=sandbox_env(cwd), capture_output=True,
                          text=True, timeout=timeout)


def expect_ok(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode == 0, (
        f"{what}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")


# -- serving ---------------------------------------------------------------------------

class Served:
    """A command serving on 127.0.0.1:``port`` until the ``with`` block ends."""

    def __init__(self, args: list[str], cwd: Path, port: int, env: dict | None = None):
        self.port = port
        self._log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(args, cwd=cwd, env=sandbox_env(cwd, env),
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def __enter__(self) -> Served:
        wait_listening(self.proc, [self.port], "served command", self.log, self.stop,
                       timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
        terminate(self.proc, timeout=15)
        self._log.close()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def serve_and_get(args: list[str], cwd: Path, env: dict | None = None) -> None:
    port = free_port()
    with Served(args, cwd, port, {**(env or {}), "WSGILOOP_BIND": f"127.0.0.1:{port}"}) as s:
        status, _ = s.request("GET", "/")
        assert status == 200, f"{shlex.join(args)}: GET / answered {status}\n{s.log()}"


# -- commands --------------------------------------------------------------------------

PARSE_ONLY = """\
import argparse, runpy, sys
parse = argparse.ArgumentParser.parse_args
def parse_and_stop(self, *args, **kwargs):
    parse(self, *args, **kwargs)
    sys.exit(0)
argparse.ArgumentParser.parse_args = parse_and_stop
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def check_install(spec: str) -> None:
    """``pip install -e SPEC``: the extras it names exist; for the bare project, the
    README's promise that the runtime needs nothing outside the standard library."""
    project = pyproject()["project"]
    match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", spec)
    assert match, f"install of something other than this project: {spec}"
    if match.group(1) is None:
        assert project["dependencies"] == [], "the runtime gained dependencies"
    for extra in match.group(1).split(",") if match.group(1) else []:
        assert extra in project["optional-dependencies"], f"no extra {extra!r}"


def run_command(words: list[str], cwd: Path) -> None:
    """Run one documented command (already split) by the rule that fits it."""
    if words[0] == "sudo":
        words = words[1:]
    program = Path(words[0]).name
    if words[:2] == ["apt-get", "install"]:
        if shutil.which("apt-cache") is None:
            pytest.skip("no apt-cache to check the package names with")
        for package in [w for w in words[2:] if not w.startswith("-")]:
            expect_ok(run(["apt-cache", "show", package], cwd), f"apt package {package}")
    elif program == "pip" and words[1:3] == ["install", "-e"]:
        check_install(words[3])
    elif words[0] == "./scripts/test.sh":
        pass  # the command that runs this very suite (and .ci/run's): nothing to add
    elif words[0] == "./scripts/serve-example.sh":
        port = free_port()
        with Served([str(ROOT / words[0]), *words[1:], "--bind", f"127.0.0.1:{port}"],
                    ROOT, port) as served:
            status, body = served.request("GET", "/")
            assert status == 200, served.log()
    elif program == "wsgiloop" or words[:3] == ["python", "-m", "wsgiloop"]:
        args = words[1:] if program == "wsgiloop" else words[3:]
        expect_ok(run([*WSGILOOP, *args, "--check-config"], cwd), shlex.join(words))
        named = {arg.split("=")[0] for arg in args}
        if not {"-b", "--bind", "--pid", "-c", "--check-config"} & named:
            serve_and_get([*WSGILOOP, *args], cwd)
    elif program == "gunicorn":
        expect_ok(run([PYTHON, "-m", "gunicorn", *words[1:], "--check-config"], cwd),
                  shlex.join(words))
    elif words[:3] == ["python", "-m", "pytest"]:
        expect_ok(run([PYTHON, *words[1:]], cwd, timeout=300), shlex.join(words))
    elif program in ("python", "python3") and words[1].startswith("bench/"):
        expect_ok(run([PYTHON, "-c", PARSE_ONLY, str(ROOT / words[1]), *words[2:]], cwd),
                  "the arguments of " + shlex.join(words))
    elif program in ("python", "python3") and words[1].startswith("examples/"):
        expect_ok(run([PYTHON, str(ROOT / words[1]), *words[2:]], cwd, timeout=300),
                  shlex.join(words))
    else:
        raise AssertionError(f"no rule runs this documented command: {shlex.join(words)}")


def shell_commands(text: str) -> list[list[str]]:
    """The commands of a shell block: one per line (a trailing backslash continues it),
    comments dropped, ``a && b`` as two commands."""
    commands: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1:]
    return commands


# -- languages -------------------------------------------------------------------------

def run_nginx(snippet: Snippet, cwd: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is not installed (scripts/setup.sh installs it)")
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(cwd / "pair.pem"))
    text = re.sub(r"(ssl_certificate(?:_key)?)\s+\S+;", rf"\1 {cwd / 'pair.pem'};",
                  snippet.text)
    if not re.search(r"^\s*http\s*{", text, re.M):
        text = "events {}\nhttp {\n" + text + "}\n"
    (cwd / "nginx.conf").write_text(text)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    expect_ok(run([nginx, "-t", "-p", str(cwd), "-c", str(cwd / "nginx.conf"),
                   "-g", f"pid {cwd / 'nginx.pid'}; error_log stderr;"], cwd),
              "nginx -t of " + snippet.where)


# -- end-to-end checks named by annotations --------------------------------------------

def check_native_app(snippet: Snippet, cwd: Path) -> None:
    """A native-mode application snippet, served for real: its item route, its WSGI
    mount and (when it has one) its long poll released by a publish."""
    (cwd / "snippet_app.py").write_text(snippet.text)
    port = free_port()
    with Served([*WSGILOOP, "snippet_app:application", "--bind", f"127.0.0.1:{port}"],
                cwd, port) as served:
        status, body = served.request("GET", "/items/42?q=x")
        assert status == 200 and json.loads(body)["q"] == "x", (status, body)
        assert str(json.loads(body)["id"]) == "42"
        assert served.request("GET", "/items/0")[0] == 404
        status, body = served.request("GET", "/legacy/")
        assert status == 200 and body == b"legacy", (status, body, served.log())
        if "/wait" in snippet.text:
            answer: list[tuple[int, bytes]] = []
            waiter = threading.Thread(
                target=lambda: answer.append(served.request("GET", "/wait", timeout=20)))
            waiter.start()
            # the publish may come before the wait is parked: publish until released
            while waiter.is_alive():
                assert served.request("POST", "/publish", body=b"")[0] < 300
                waiter.join(0.2)
            assert answer and json.loads(answer[0][1]) == {"news": True}, answer


def check_metrics(snippet: Snippet, cwd: Path) -> None:
    """A shell block serving with ``--metrics-bind`` and asking that address with
    ``curl``: the (first) wsgiloop command with ``--metrics-bind`` is served, on free ports
    for its addresses, and each ``curl URL`` is asked of it by a real client (the URL's
    port must be the documented ``--metrics-bind``'s); every other command runs by the
    rules of :func:`run_command`."""
    commands = shell_commands(snippet.text)
    served = next(w for w in commands if w[0] == "wsgiloop" and "--metrics-bind" in w)
    documented = served[served.index("--metrics-bind") + 1]
    port, metrics = free_port(), free_port()
    args, words = [], served[1:]
    while words:
        word, *words = words
        if word in ("-b", "--bind", "--metrics-bind"):
            words = words[1:]
        else:
            args.append(word)
    expect_ok(run([*WSGILOOP, *served[1:], "--check-config"], cwd), shlex.join(served))
    with Served([*WSGILOOP, *args, "--bind", f"127.0.0.1:{port}",
                 "--metrics-bind", f"127.0.0.1:{metrics}"], cwd, port) as server:
        wait_listening(server.proc, [metrics], "the metrics address", server.log,
                       server.stop)
        for words in commands:
            if words is served:
                continue
            if words[0] != "curl":
                run_command(words, cwd)
                continue
            url = urllib.parse.urlsplit(words[-1])
            assert url.netloc == documented, f"{shlex.join(words)}: not {documented}"
            deadline = time.monotonic() + 30  # /readyz: 503 until the workers serve
            while True:
                with contextlib.suppress(urllib.error.HTTPError):
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{metrics}{url.path}", timeout=10) as answer:
                        assert answer.read(), f"{shlex.join(words)}: an empty answer"
                        break
                assert time.monotonic() < deadline, f"{shlex.join(words)}: {server.log()}"
                time.sleep(0.05)


def check_websocket_app(snippet: Snippet, cwd: Path) -> None:
    """A WebSocket snippet, served for real: two clients on its first route (a group
    filled with ``room``); a message one sends comes back to it (echo or broadcast), and
    a cross-origin handshake is refused."""
    import websocket  # websocket-client

    (cwd / "snippet_ws.py").write_text(snippet.text)
    route = re.search(r'\(r"(/[^"]*)"', snippet.text).group(1)
    path = re.sub(r"\([^)]*\)", "room", route)
    port = free_port()
    with Served([*WSGILOOP, "snippet_ws:application", "--bind", f"127.0.0.1:{port}"],
                cwd, port) as served:
        url = f"ws://127.0.0.1:{port}{path}"
        first = websocket.create_connection(url, timeout=10)
        second = websocket.create_connection(url, timeout=10)
        try:
            first.settimeout(0.5)
            with contextlib.suppress(websocket.WebSocketTimeoutException):
                first.recv()  # a greeting, if the snippet sends one
            first.settimeout(10)
            first.send("hello from the docs")
            assert first.recv() == "hello from the docs", served.log()
        finally:
            first.close()
            second.close()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, timeout=10, origin="http://elsewhere.example")
        assert refused.value.status_code == 403


CHECKS: dict[str, Callable[[Snippet, Path], None]] = {"native-app": check_native_app,
                                                      "websocket-app": check_websocket_app,
                                                      "metrics": check_metrics}


def run_snippet(snippet: Snippet, cwd: Path) -> None:
    if snippet.actions:
        for action in snippet.actions:
            verb, _, argument = action.partition(" ")
            if verb == "file":
                target = cwd / argument
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(snippet.text)
            elif verb == "run":
                for words in shell_commands(argument):
                    run_command(words, cwd)
            elif verb == "check":
                CHECKS[argument](snippet, cwd)
            elif verb == "covered-by":
                path, _, name = argument.partition("::")
                source = (ROOT / path).read_text(encoding="utf-8")
                assert re.search(rf"^def {re.escape(name)}\(", source, re.M), (
                    f"{argument}: no such test")
            else:
                raise AssertionError(f"unknown snippet action {action!r}")
    elif snippet.lang == "text":
        pass  # a drawing or sample output
    elif not snippet.lang:
        raise AssertionError("a block without a language: name it (`text` for drawings "
                             "and sample output, which are not run)")
    elif snippet.lang == "sh":
        for words in shell_commands(snippet.text):
            run_command(words, cwd)
    elif snippet.lang == "nginx":
        run_nginx(snippet, cwd)
    else:
        raise AssertionError(
            f"a {snippet.lang} block needs a `<!-- snippet: ... -->` line above it saying "
            "how it is run (see tests/test_doc_snippets.py)")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_snippet_runs(document: Path, sandbox: Path) -> None:
    failures = []
    for snippet in snippets(document):
        try:
            run_snippet(snippet, sandbox)
        except Exception as error:  # every snippet is tried; all failures are reported
            failures.append(f"{snippet.where} ({snippet.lang}): {error!r}")
    assert not failures, "\n\n".join(failures)


def test_the_snippet_reader_sees_every_block(tmp_path: Path) -> None:
    """The reader finds annotated and plain blocks, and leaves drawings out."""
    doc = tmp_path / "doc.md"
    doc.write_text("text\n<!-- snippet: file a.py; run wsgiloop a:app -->\n```python\n"
                   "x = 1\n```\n\n```text\ndrawing\n```\n```sh\nwsgiloop b:app\n```\n```\n?\n```\n")
    found = snippets(doc)
    assert [(s.lang, s.line, s.actions) for s in found] == [
        ("python", 3, ["file a.py", "run wsgiloop a:app"]), ("text", 7, []), ("sh", 10, []),
        ("", 13, [])]
    with pytest.raises(AssertionError, match="without a language"):
        run_snippet(found[3], tmp_path)
    assert shell_commands("a b \\\n c  # note\nd && e f\n") == [["a", "b", "c"], ["d"],
                                                                 ["e", "f"]]
