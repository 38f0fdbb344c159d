"""The pytest plugin (wsgiloop.testing): user projects, run by pytester in a subprocess so
that the plugin is found through its pytest11 entry point, exactly as for a user."""

from __future__ import annotations

import os
import textwrap
import time
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

APP = """
    import os


    def app(environ, start_response):
        body = f"hello from {os.getpid()} {environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]


    def other(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the other app"]
"""

# Two tests of one module: requests and http.client against the same live server.
TESTS = """
    import http.client
    import os

    import requests


    def record(live_server):
        with open(os.path.join(os.path.dirname(__file__), "servers.txt"), "a") as f:
            f.write(f"{__name__} {live_server.pid} {live_server.port}\\n")


    def test_with_requests(live_server):
        record(live_server)
        response = requests.get(live_server.url + "/hi", timeout=10)
        assert response.status_code == 200
        assert response.text.startswith("hello from ")
        assert response.text.endswith(" /hi")
        assert live_server.url == f"http://127.0.0.1:{live_server.port}"
        assert live_server.host == "127.0.0.1"
        assert "Listening at: " + live_server.url in live_server.log


    def test_with_http_client(live_server):
        record(live_server)
        conn = http.client.HTTPConnection(live_server.host, live_server.port, timeout=10)
        conn.request("GET", "/there")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read().endswith(b" /there")
        conn.close()
"""


def servers(pytester: pytest.Pytester) -> list[tuple[str, int, int]]:
    lines = (pytester.path / "servers.txt").read_text().split("\n")
    return [(m, int(pid), int(port)) for m, pid, port in
            (line.split() for line in lines if line)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_stopped(pids: set[int]) -> None:
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), "a live server outlived the test run"


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "wsgiloop"]
    assert [ep.value for ep in found] == ["wsgiloop.testing"], (
        "run `pip install -e .` so that the entry point is registered")


def test_live_server_from_an_ini_option(pytester):
    pytester.makepyfile(myapp=textwrap.dedent(APP))
    pytester.makeini("[pytest]\nwsgiloop_app = myapp:app\n")
    pytester.makepyfile(test_site=textwrap.dedent(TESTS))
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=2)
    seen = servers(pytester)
    assert len({pid for _, pid, _ in seen}) == 1  # one server for the module
    assert_stopped({pid for _, pid, _ in seen})


def test_live_server_from_pyproject_and_a_fixture_override(pytester):
    pytester.makepyfile(myapp=textwrap.dedent(APP))
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        wsgiloop_app = "myapp:app"
        wsgiloop_args = "--server-header plugin-test --access-log -"
    """)
    pytester.makeconftest("")
    pytester.makepyfile(test_override=textwrap.dedent("""
        import pytest
        import requests


        @pytest.fixture
        def wsgiloop_app():
            return "myapp:other"


        def test_other_app(live_server):
            response = requests.get(live_server.url + "/", timeout=10)
            assert response.text == "the other app"
            assert response.headers["Server"] == "plugin-test"
            live_server.wait_for_log("worker 1 .* serving")
            live_server.wait_for_stdout('"GET / HTTP/1.1" 200')
    """))
    pytester.makepyfile(test_default=textwrap.dedent("""
        import requests


        def test_ini_app(live_server):
            assert requests.get(live_server.url, timeout=10).text.startswith("hello from")
    """))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("how", ["module", "ini", "option"])
def test_module_and_session_scope(pytester, how):
    pytester.makepyfile(myapp=textwrap.dedent(APP))
    ini = "[pytest]\nwsgiloop_app = myapp:app\n"
    if how == "ini":
        ini += "wsgiloop_scope = session\n"
    pytester.makeini(ini)
    pytester.makepyfile(test_one=textwrap.dedent(TESTS), test_two=textwrap.dedent(TESTS))
    args = ["--wsgiloop-scope", "session"] if how == "option" else []
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=4)
    seen = servers(pytester)
    by_module = {m: {pid for n, pid, _ in seen if n == m} for m, _, _ in seen}
    assert set(by_module) == {"test_one", "test_two"}
    assert all(len(pids) == 1 for pids in by_module.values())
    if how == "module":
        assert by_module["test_one"] != by_module["test_two"]
    else:
        assert by_module["test_one"] == by_module["test_two"]
    assert_stopped({pid for _, pid, _ in seen})


def test_app_from_wsgiloops_own_configuration(pytester):
    pytester.makepyfile(myapp=textwrap.dedent(APP))
    pytester.makepyprojecttoml("""
        [tool.wsgiloop]
        app = "myapp:other"
        workers = 2
    """)
    pytester.makepyfile(test_it=textwrap.dedent("""
        import urllib.request


        def test_it(live_server):
            with urllib.request.urlopen(live_server.url, timeout=10) as response:
                assert response.read() == b"the other app"
            live_server.wait_for_log("worker 2 .* serving")
    """))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_a_server_that_cannot_start_fails_the_test_with_its_log(pytester):
    pytester.makepyfile(myapp=textwrap.dedent(APP))
    pytester.makeini("[pytest]\nwsgiloop_app = myapp:nope\n")
    pytester.makepyfile(test_it="def test_it(live_server):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*wsgiloop did not start*exit status 2*",
        "*wsgiloop: error: module 'myapp' has no attribute 'nope'*",
    ])


def test_no_application_anywhere(pytester):
    pytester.makepyfile(test_it="def test_it(live_server):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*wsgiloop: error: no application given*"])


def test_a_bad_scope_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nwsgiloop_scope = forever\n")
    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*wsgiloop_scope: expected one of module, session*"])


def test_a_server_that_died_is_started_again(pytester):
    pytester.makepyfile(myapp=textwrap.dedent(APP))
    pytester.makeini("[pytest]\nwsgiloop_app = myapp:app\n")
    pytester.makepyfile(test_it=textwrap.dedent("""
        import requests

        first = {}


        def test_one(live_server):
            first["pid"] = live_server.pid
            assert live_server.stop() == 0


        def test_two(live_server):
            assert live_server.pid != first["pid"]
            assert requests.get(live_server.url, timeout=10).status_code == 200
    """))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
