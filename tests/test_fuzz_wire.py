"""A fresh worker and a warmed one must answer every request alike (issue 9), and so
must the two parser backends (issue 11).

Two one-worker servers run ``apps:request_echo``, for each parser backend: the fresh one
always with the Python parser, the warm one with the backend under test, so that on the
httptools leg the two backends' answers are compared byte for byte too.  The fresh one
replaces its worker after every request (``--max-requests 1``), so each connection meets
a newly forked worker that has parsed nothing before.  The warm one is first sent a few
hundred requests, valid and invalid: every case of ``tests/http_corpus.py`` and a valid
request for each field name the generated requests use, in three spellings.  Then
Hypothesis draws requests (valid, pipelined, mutated, and changed where parsers are
known to differ) and each goes, on a new connection, to both servers; the responses
(status lines, fields but Date, bodies) must be the same bytes --
but for what the fresh worker's retirement changes (see :func:`answered_alike`).

Each exchange sends the bytes, half-closes, and reads until the server closes, so no
test waits for a timeout.

Also, in this process: the connection's flat path (a clean request that arrives whole)
against the general code, ``ConnectionParameters(flat_path=False)``, on generated
requests -- the same bytes but Date, and the same environ; for the WSGI gateway and for
a native :class:`~wsgiloop.web.Application`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from collections.abc import Iterable

import pytest
from http_corpus import CASES
from http_strategies import FIELD_NAMES, any_input, clean_requests, edge_requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_backends import BACKEND_NAMES
from support import ServerProcess, run_until

from wsgiloop import aio
from wsgiloop.http import RequestParser
from wsgiloop.ioloop import IOLoop
from wsgiloop.iostream import IOStream
from wsgiloop.params import ConnectionParameters
from wsgiloop.server import HTTPConnection
from wsgiloop.web import Application, HTTPError, RequestHandler
from wsgiloop.wsgi import WSGIGateway

_DATE = re.compile(rb"\r\nDate: [^\r\n]*")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSING = b"Connection: close\r\n"


def exchange(server: ServerProcess, data: bytes, timeout: float = 10.0) -> bytes:
    """Everything the server sends back for ``data`` on a new connection, Date fields and
    interim 100 responses (sent or not depending on how the bytes arrived) removed."""
    with server.connect(timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before everything was sent: what came back still counts
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return _DATE.sub(b"", b"".join(chunks).replace(_CONTINUE, b""))


def answered_alike(fresh: bytes, warm: bytes) -> bool:
    """The same answers from the fresh and the warm worker.

    The fresh worker retires after its first response (``--max-requests 1``), and a
    retiring worker closes each connection after the response it is giving.  A pipelined
    request answered in the same loop pass as the first one is not affected, but one
    answered later -- a 100-continue request, whose application runs on a worker
    thread -- says ``Connection: close`` there, and the connection closes after it.  That
    field, in a response after the first, and answers that stop there are the one
    difference allowed: without the field, ``fresh`` must be the start of ``warm``.
    """
    if fresh == warm:
        return True
    at = len(os.path.commonprefix([fresh, warm]))
    if not fresh.startswith(_CLOSING, at) or at < fresh.find(b"\r\n\r\n"):
        return False  # not that header, or in the first response
    return warm.startswith(fresh[at + len(_CLOSING):], at)


def warm_up(server: ServerProcess) -> int:
    """Send the warm-up traffic; the number of requests sent."""
    sent = 0
    for case in CASES:
        exchange(server, case.data)
        sent += 1
    values = {"Host": "warm.example", "Content-Length": "0", "Transfer-Encoding": "chunked",
              "Expect": "100-continue", "Connection": "keep-alive", "TE": "trailers",
              "Trailer": "X-Sum", "Upgrade": "h2c"}
    for name in FIELD_NAMES:
        for spelling in (name, name.lower(), name.upper()):
            fields = [] if name == "Host" else ["Host: warm.example"]
            fields.append(f"{spelling}: {values.get(name, 'warm value')}")
            body = b""
            if name in ("Transfer-Encoding", "Trailer"):
                fields.append("Transfer-Encoding: chunked" if name == "Trailer" else "")
                body = b"1;x=y\r\na\r\n0\r\nX-Sum: 1\r\n\r\n"
            elif name == "Expect":
                fields.append("Content-Length: 4")  # a body to defer
                body = b"warm"
            head = "".join(f + "\r\n" for f in fields if f)
            response = exchange(server, f"POST /warm HTTP/1.1\r\n{head}\r\n".encode() + body)
            assert response.startswith(b"HTTP/1.1 200 "), (name, response[:200])
            sent += 1
    return sent


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def servers(request: pytest.FixtureRequest):
    """(fresh, warm).  The fresh one always parses with the Python backend, the warm one
    with the backend of the leg: on the httptools leg the two backends must also give
    the same bytes back."""
    with contextlib.ExitStack() as stack:
        # a new worker for every connection: it has seen nothing but the request at hand
        fresh = stack.enter_context(ServerProcess("apps:request_echo", "--workers", "1",
                                                  "--max-requests", "1",
                                                  "--parser", "python"))
        warm = stack.enter_context(ServerProcess("apps:request_echo", "--workers", "1",
                                                 "--parser", request.param))
        assert warm_up(warm) >= 300
        yield fresh, warm


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(any_input, edge_requests()))
def test_fresh_and_warmed_workers_answer_alike(servers, data: bytes) -> None:
    fresh, warm = servers
    from_fresh, from_warm = exchange(fresh, data), exchange(warm, data)
    assert answered_alike(from_fresh, from_warm), (data, from_fresh, from_warm)


def test_warmed_worker_refuses_a_colon_less_field(servers) -> None:
    """The defect this file guards against, spelled out."""
    fresh, warm = servers
    data = b"GET / HTTP/1.1\r\nHost: x\r\nFoo\r\n\r\n"
    assert exchange(fresh, data).startswith(b"HTTP/1.1 400 ")
    assert exchange(warm, data).startswith(b"HTTP/1.1 400 ")


def test_answered_alike_allows_only_the_retirement() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n%s\r\nb"
    warm = first + second % b"" + first
    assert answered_alike(first + second % _CLOSING, warm)
    assert not answered_alike(first, warm)  # closed without saying so
    assert not answered_alike(first.replace(b"\r\n\r\n", b"\r\n" + _CLOSING + b"\r\n"),
                              first)  # the first response is the fresh worker's own
    assert not answered_alike(first + second % b"X-Other: 1\r\n", warm)


# -- the connection's flat path against the general code (in process) ---------------------
#
# Two servers in this process, one HTTPConnection per exchange on a real socketpair: the
# same WSGI gateway and application, one with the flat path (the default) and one with
# ``ConnectionParameters(flat_path=False)``, where every request takes the general code.
# For every generated input they must send the same bytes but for the Date field, and the
# application must see the same environ.

_FLAT_PEER = ("10.1.2.3", 5678)
_FLAT_SOCKNAME = ("10.9.8.7", 8080)
_OPAQUE = ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper")


def environ_reply(environ: dict, start_response) -> Iterable[bytes]:
    """The whole environ (but its objects) as the body, answered in one of several ways
    chosen by the length of the path, so that the flat path meets every kind of answer:
    a one-piece list (most), a tuple, two pieces, a generator, the ``write`` callable, a
    204, a declared Content-Length too long or too short, a header that is invalid."""
    environ["wsgi.input"].read()
    body = repr(sorted((k, v) for k, v in environ.items() if k not in _OPAQUE)).encode()
    kind = len(environ["PATH_INFO"]) % 12
    headers = [("Content-Type", "text/plain"), ("X-Kind", str(kind))]
    if kind == 1:
        start_response("200 OK", headers)
        return (body,)
    if kind == 2:
        start_response("200 OK", headers)
        return [body[:5], body[5:]]
    if kind == 3:
        start_response("201 Created", headers)
        return iter([body])
    if kind == 4:
        start_response("200 OK", headers)(b"written:")
        return [body]
    if kind == 5:
        start_response("204 No Content", headers)
        return [b""]
    if kind == 6:
        start_response("200 OK", headers + [("Content-Length", str(len(body) + 3))])
        return [body]
    if kind == 7:
        start_response("200 OK", headers + [("Content-Length", str(len(body) // 2))])
        return [body]
    if kind == 8:
        start_response("200 OK", headers + [("X-Bad", "a\r\nb")])
        return [body]
    if kind == 9:
        start_response("200 OK", headers + [("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", headers)
    return [body]


class FlatServers:
    """One loop and one delegate (by default the WSGI gateway of :func:`environ_reply`)
    for both kinds; ``exchange`` on a new connection each time."""

    def __init__(self, delegate=None) -> None:
        self.loop = IOLoop(slow_callback_threshold=None)
        self.flat_calls = 0
        if delegate is None:
            delegate = WSGIGateway(environ_reply, multithread=False)
        self.delegate = delegate

    def exchange(self, data: bytes, flat: bool, split: int = 0) -> bytes:
        """What a connection answers to ``data`` (sent whole, or in two writes with a
        loop pass between them when ``split``), then the client's end of input; the
        Date fields removed."""
        params = ConnectionParameters(flat_path=flat)
        ours, theirs = socket.socketpair()
        stream = IOStream(ours, self.loop, high_water=params.high_water,
                          low_water=params.low_water)
        HTTPConnection(stream, self.loop, params, self.delegate, _FLAT_PEER, _FLAT_SOCKNAME)
        theirs.setblocking(False)
        chunks: list[bytes] = []

        def ended() -> bool:
            while True:
                try:
                    chunk = theirs.recv(65536)
                except BlockingIOError:
                    return False
                except ConnectionResetError:
                    return True
                if not chunk:
                    return True
                chunks.append(chunk)

        # Requests the flat path takes are counted: those take_clean reads.
        take_clean = RequestParser.take_clean

        def counting(parser: RequestParser, received: bytes):
            head = take_clean(parser, received)
            if head is not None:
                self.flat_calls += 1
            return head

        RequestParser.take_clean = counting  # type: ignore[method-assign]
        try:
            if split:
                theirs.sendall(data[:split])
                run_until(self.loop, lambda: True)
                data = data[split:]
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                theirs.sendall(data)
                theirs.shutdown(socket.SHUT_WR)
            assert run_until(self.loop, ended, timeout=10.0), data
        finally:
            RequestParser.take_clean = take_clean  # type: ignore[method-assign]
            theirs.close()
            stream.close()
        return _DATE.sub(b"", b"".join(chunks))

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(scope="module")
def flat_servers():
    servers = FlatServers()
    yield servers
    servers.close()


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.one_of(clean_requests(), clean_requests(), any_input, edge_requests()),
       st.integers(0, 40))
def test_the_flat_path_answers_as_the_general_code(flat_servers, data: bytes,
                                                   split: int) -> None:
    """The same bytes (but Date) and the same environ from a connection with the flat
    path as from one without, for clean requests, near-clean ones and any input, sent
    whole or in two writes."""
    split = split if 0 < split < len(data) and split % 3 == 0 else 0
    flat = flat_servers.exchange(data, True, split)
    general = flat_servers.exchange(data, False, split)
    assert flat == general, (data, flat, general)


def test_clean_requests_take_the_flat_path(flat_servers) -> None:
    """Clean requests that arrive whole take the flat path (and every kind of answer
    the application gives comes out as without it); with ``flat_path=False``, and for
    what is not clean, nothing does."""
    clean = [f"GET /{'p' * n}?q HTTP/1.1\r\nHost: x:80\r\nCookie: a\r\ncookie: b\r\n"
             f"X_Foo: 1\r\n\r\n".encode() for n in range(12)]
    clean.append(b"HEAD / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n")
    for data in clean:
        before = flat_servers.flat_calls
        flat = flat_servers.exchange(data, True)
        assert flat_servers.flat_calls == before + 1, data
        assert flat == flat_servers.exchange(data, False), data
        assert flat_servers.flat_calls == before + 1, data
    assert b"HTTP/1.1 500 " in flat_servers.exchange(clean[7], True)  # the invalid header
    for data in [b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na",
                 b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"]:
        before = flat_servers.flat_calls
        flat_servers.exchange(data, True)
        assert flat_servers.flat_calls == before, data


# -- the same for a native Application ------------------------------------------------------
#
# One handler answers every routed path in one of thirteen ways chosen by the length of
# the decoded path (finished in the method, written and finished, flushed, async, an
# exception, an HTTPError, a redirect, set_status, repeated fields, 204, a body whose ETag
# a request may name, JSON, a cleared field), echoing what it saw of the request; /mnt is
# a mounted WSGI app.  Flat or not, the bytes must be the same (but Date).

_NATIVE_BODY = b"the same body every time"
_NATIVE_ETAG = f'"{hashlib.sha1(_NATIVE_BODY).hexdigest()}"'


class Kinds(RequestHandler):
    def get(self, *args: str):
        request = self.request
        text = repr([request.method, request.uri, request.path, request.decoded_path,
                     request.query, request.version, request.host, request.host_name,
                     request.remote_ip, request.protocol, request.connection.head.headers,
                     list(args)])
        kind = len(request.decoded_path) % 13
        if kind == 1:
            self.write(text[:5])
            self.finish(text[5:])
        elif kind == 2:
            self.write(text)
            self.flush()
            self.write(b"and more")
        elif kind == 3:
            return self.later(text)
        elif kind == 4:
            raise ValueError("kind 4 fails")
        elif kind == 5:
            raise HTTPError(403, headers={"X-Why": "kind 5"})
        elif kind == 6:
            self.redirect("elsewhere?kind=6")
        elif kind == 7:
            self.set_status(201)
            self.write(text)
        elif kind == 8:
            self.add_header("X-Rep", "a")
            self.add_header("x-rep", "b")
            self.set_cookie("c", "1")
            self.set_cookie("d", "2")
            self.write(text)
        elif kind == 9:
            self.set_status(204)
        elif kind == 10:
            self.write(_NATIVE_BODY)
        elif kind == 11:
            self.write({"text": text})
        elif kind == 12:
            self.clear_header("Content-Type")
            self.write(text)
        else:
            self.write(text)
        return None

    post = delete = get

    async def later(self, text: str) -> None:
        await aio.sleep(0)
        self.write(text)


def native_application() -> Application:
    return Application([(r"/mnt", environ_reply), (r"/(.*)", Kinds)])


@st.composite
def native_requests(draw) -> bytes:
    """Clean requests for :class:`Kinds` (every kind, by the path's length), a mounted
    app, ``OPTIONS *``, paths that do not decode; at times naming the ETag of kind 10."""
    method = draw(st.sampled_from(["GET", "GET", "HEAD", "POST", "DELETE", "OPTIONS", "PUT"]))
    target = draw(st.sampled_from(["/" + "k" * n for n in range(13)]
                                  + ["/mnt", "/mnt/x?y=1", "/%ff", "/%C3%A9t%C3%A9", "*",
                                     "/a%2Fb", "/q?a=1&b=2"]))
    fields = [f"Host: {draw(st.sampled_from(['example.com', 'a.example:8080']))}"]
    condition = draw(st.sampled_from([None, None, _NATIVE_ETAG, "*", 'W/"x", ' + _NATIVE_ETAG,
                                      '"other"']))
    if condition is not None:
        fields.append(f"If-None-Match: {condition}")
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f + "\r\n" for f in fields)
    return (head + "\r\n").encode("latin-1")


@pytest.fixture(scope="module")
def native_flat_servers():
    servers = FlatServers(native_application())
    yield servers
    servers.close()


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.one_of(native_requests(), native_requests(), clean_requests(), any_input,
                 edge_requests()),
       st.integers(0, 40))
def test_the_native_flat_path_answers_as_the_general_code(native_flat_servers, data: bytes,
                                                          split: int) -> None:
    """A native Application: the same bytes (but Date) from a connection with the flat
    path as from one without, for every kind of answer its handler gives."""
    split = split if 0 < split < len(data) and split % 3 == 0 else 0
    flat = native_flat_servers.exchange(data, True, split)
    general = native_flat_servers.exchange(data, False, split)
    assert flat == general, (data, flat, general)


def test_native_answers_flat_and_not_are_the_same(native_flat_servers) -> None:
    """Each kind of answer, a 304, HEAD, a mount and ``OPTIONS *``, flat and not: the
    same bytes; the flat path takes every clean origin-form request."""
    host = b"Host: x\r\n"
    ten = b"/" + b"k" * 9  # a decoded path of 10 characters: kind 10
    cases = [(b"GET /%s HTTP/1.1\r\n%s\r\n" % (b"k" * ((kind - 1) % 13), host), kind)
             for kind in range(13)]
    cases += [(b"GET %s HTTP/1.1\r\n%sIf-None-Match: %s\r\n\r\n"
               % (ten, host, _NATIVE_ETAG.encode()), "304"),
              (b"HEAD %s HTTP/1.1\r\n%s\r\n" % (ten, host), "head"),
              (b"GET /mnt/x HTTP/1.1\r\n%s\r\n" % host, "mount"),
              (b"OPTIONS * HTTP/1.1\r\n%s\r\n" % host, "options")]
    answers = {}
    for data, kind in cases:
        before = native_flat_servers.flat_calls
        flat = native_flat_servers.exchange(data, True)
        # (an asterisk-form target is not one the flat path takes)
        assert native_flat_servers.flat_calls == before + (kind != "options"), data
        answers[kind] = flat
        assert flat == native_flat_servers.exchange(data, False), data
    assert answers["304"].startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert answers[10].endswith(b"\r\n\r\n" + _NATIVE_BODY)
    assert answers["head"] == answers[10][:-len(_NATIVE_BODY)]
    assert answers[4].startswith(b"HTTP/1.1 500 ")
    assert answers[8].count(b"\r\nSet-Cookie: ") == 2
    assert b"\r\nX-Rep: a\r\n" in answers[8] and b"\r\nX-Rep: b\r\n" in answers[8]


def test_the_native_flat_path_uses_what_replaces_the_entry_points_later() -> None:
    """The flat path calls the application as any delegate is called: a ``serve``,
    ``run_handler`` or ``__call__`` put in place after requests were served (on the
    class or on the instance) is used by the next request on the flat path, and a
    ``serve`` that answers through a responder of its own gets the answer."""
    class Patched(Application):
        pass

    servers = FlatServers(Patched([(r"/(.*)", Kinds)]))
    application = servers.delegate
    data = b"GET /kkkkkkkkkkkk HTTP/1.1\r\nHost: x\r\n\r\n"  # kind 0
    try:
        first = servers.exchange(data, True)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        seen: list[str] = []

        def serve(self, request, responder) -> None:
            seen.append(request.head.path)
            Application.serve(self, request, responder)

        Patched.serve = serve
        assert servers.exchange(data, True) == first
        assert seen == ["/kkkkkkkkkkkk"]

        class Tee:
            """A responder in front of the connection that sees the answers."""

            def __init__(self, connection) -> None:
                self.connection = connection

            def __getattr__(self, name: str):
                return getattr(self.connection, name)

            def respond(self, status, headers, body) -> None:
                seen.append(status)
                self.connection.respond(status, headers, body)

        def serve_through_a_tee(self, request, responder) -> None:
            Application.serve(self, request, Tee(responder))

        Patched.serve = serve_through_a_tee
        assert servers.exchange(data, True) == first
        assert seen[1:] == ["200 OK"]  # the answer went through the tee

        def run_handler(rule, request, responder, path, args, kwargs) -> None:
            responder.respond("203 Patched", [], b"run_handler")

        application.run_handler = run_handler
        assert servers.exchange(data, True).startswith(b"HTTP/1.1 203 Patched\r\n")
        Patched.__call__ = lambda self, request, responder: responder.respond(
            "202 Called", [], b"__call__")
        assert servers.exchange(data, True).endswith(b"\r\n\r\n__call__")
        assert servers.flat_calls == 5
    finally:
        servers.close()
