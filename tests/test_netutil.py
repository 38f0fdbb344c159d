"""Bind addresses: parsing, binding (TCP, IPv6, all interfaces, unix) and naming."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from wsgiloop.config import ConfigError
from wsgiloop.netutil import (
    BindError,
    BindSpec,
    bind_sockets,
    close_sockets,
    parse_bind,
    socket_url,
)


def _host_has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _host_has_ipv6()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="this host has no IPv6")


@pytest.fixture
def sockets():
    """Collects bound sockets and closes them after the test."""
    held: list[socket.socket] = []
    yield held
    close_sockets(held)


def bind(held: list[socket.socket], *texts: str, backlog: int = 16) -> list[socket.socket]:
    result = bind_sockets([parse_bind(t) for t in texts], backlog)
    held.extend(result)
    return result


@pytest.fixture
def short_dir():
    """A directory with a short path: unix socket paths are limited to ~107 bytes."""
    path = tempfile.mkdtemp(prefix="wl-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


# --- parse_bind -----------------------------------------------------------------------


@pytest.mark.parametrize("text,spec", [
    ("127.0.0.1:8000", BindSpec("tcp", "127.0.0.1", 8000)),
    ("localhost:80", BindSpec("tcp", "localhost", 80)),
    ("example.com:0", BindSpec("tcp", "example.com", 0)),
    ("0.0.0.0:65535", BindSpec("tcp", "0.0.0.0", 65535)),
    ("[::1]:8000", BindSpec("tcp", "::1", 8000)),
    ("[::]:8000", BindSpec("tcp", "::", 8000)),
    ("[fe80::1%lo]:8000", BindSpec("tcp", "fe80::1%lo", 8000)),
    (":8000", BindSpec("tcp", None, 8000)),
    ("8000", BindSpec("tcp", None, 8000)),
    (" 8000 ", BindSpec("tcp", None, 8000)),
    ("unix:/tmp/app.sock", BindSpec("unix", path="/tmp/app.sock")),
    ("unix:relative.sock", BindSpec("unix", path="relative.sock")),
    # gunicorn's forms: a host alone takes port 8000; tcp://, unix:// and fd:// prefixes.
    ("127.0.0.1", BindSpec("tcp", "127.0.0.1", 8000)),
    ("0.0.0.0", BindSpec("tcp", "0.0.0.0", 8000)),
    ("localhost", BindSpec("tcp", "localhost", 8000)),
    ("[::1]", BindSpec("tcp", "::1", 8000)),
    ("tcp://127.0.0.1:9000", BindSpec("tcp", "127.0.0.1", 9000)),
    ("tcp://[::1]:9000", BindSpec("tcp", "::1", 9000)),
    ("unix:///run/app.sock", BindSpec("unix", path="/run/app.sock")),
    ("fd://3", BindSpec("fd", fd=3)),
])
def test_parse_good(text, spec):
    assert parse_bind(text) == spec


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"),
    ("127.0.0.1:", "missing port"),
    ("[::1]:", "missing port"),
    ("[::1]8000", "expected ':PORT' after ']'"),
    ("[::1:8000", "missing ']'"),
    ("[nothost]:80", "is not an IPv6 address"),
    ("::1", "put an IPv6 address in brackets"),
    ("::1:8000", "put an IPv6 address in brackets"),
    ("host:http", "port 'http' is not a number"),
    ("host:-1", "port '-1' is not a number"),
    ("host:65536", "port 65536 is out of range"),
    ("99999", "port 99999 is out of range"),
    ("bad host:80", "is not a host name or IP address"),
    ("host/x:80", "is not a host name or IP address"),
    ("unix:", "missing socket path"),
    ("http://127.0.0.1:80", "give HOST:PORT, not a URL"),
    ("a:b:80", "is not a host name or IP address"),
    ("fd://", "is not a file descriptor number"),
    ("fd://three", "is not a file descriptor number"),
    ("fd://99999999999999999999", "is not a file descriptor number"),
    ("bad host", "is not a host name or IP address"),
])
def test_parse_bad(text, fragment):
    with pytest.raises(BindError) as info:
        parse_bind(text)
    message = str(info.value)
    assert message.startswith(f"bad bind address {text.strip()!r}")
    assert fragment in message
    assert "\n" not in message


def test_bind_error_is_a_value_error_not_tied_to_config():
    # netutil sits below config in the layers, so its error must not come from config.
    assert issubclass(BindError, ValueError)
    assert not issubclass(BindError, ConfigError)


def test_spec_str_round_trips():
    for text in ["127.0.0.1:80", "[::1]:80", ":80", "unix:/x/y.sock", "fd://4"]:
        assert str(parse_bind(text)) == text
    assert str(parse_bind("80")) == ":80"


# --- TCP ------------------------------------------------------------------------------


def test_bind_ipv4_port_zero(sockets):
    [sock] = bind(sockets, "127.0.0.1:0")
    host, port = sock.getsockname()
    assert host == "127.0.0.1" and port > 0
    assert sock.getblocking() is False
    assert sock.get_inheritable() is False
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 0
    assert socket_url(sock) == f"http://127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_port_in_use(sockets):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as info:
            bind(sockets, f"127.0.0.1:{port}")
    assert str(info.value) == f"cannot bind 127.0.0.1:{port}: address already in use"


def test_address_not_on_this_host(sockets):
    # 192.0.2.0/24 is TEST-NET-1: never a local address.
    with pytest.raises(BindError) as info:
        bind(sockets, "192.0.2.1:0")
    assert str(info.value) == "cannot bind 192.0.2.1:0: address not available on this host"


def test_unresolvable_host(sockets):
    with pytest.raises(BindError) as info:
        bind(sockets, "no-such-host.invalid:0")
    assert "cannot resolve 'no-such-host.invalid'" in str(info.value)


@needs_ipv6
def test_bind_ipv6(sockets):
    [sock] = bind(sockets, "[::1]:0")
    assert sock.family == socket.AF_INET6
    assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    port = sock.getsockname()[1]
    assert socket_url(sock) == f"http://[::1]:{port}"
    with socket.create_connection(("::1", port), timeout=5):
        pass


@needs_ipv6
def test_ipv6_port_in_use(sockets):
    [first] = bind(sockets, "[::1]:0")
    port = first.getsockname()[1]
    with pytest.raises(BindError) as info:
        bind(sockets, f"[::1]:{port}")
    assert str(info.value) == f"cannot bind [::1]:{port}: address already in use"


def test_all_interfaces_binds_both_families_on_one_port(sockets):
    result = bind(sockets, ":0")
    families = [s.family for s in result]
    assert families[0] == socket.AF_INET
    assert result[0].getsockname()[0] == "0.0.0.0"
    ports = {s.getsockname()[1] for s in result}
    assert len(ports) == 1
    if HAS_IPV6:
        assert families == [socket.AF_INET, socket.AF_INET6]
        assert result[1].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert socket_url(result[1]) == f"http://[::]:{ports.pop()}"
    else:
        assert families == [socket.AF_INET]


def test_bare_port_means_all_interfaces(sockets):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = bind(sockets, str(port))
    assert all(s.getsockname()[1] == port for s in result)
    assert result[0].getsockname()[0] == "0.0.0.0"


def test_host_name(sockets):
    result = bind(sockets, "localhost:0")
    assert result
    assert len({s.getsockname()[1] for s in result}) == 1
    with socket.create_connection(("127.0.0.1", result[0].getsockname()[1]), timeout=5):
        pass


def test_several_specs_and_all_or_nothing(sockets):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        specs = [parse_bind("127.0.0.1:0"), parse_bind(f"127.0.0.1:{port}")]
        opened_before = _open_fds()
        with pytest.raises(BindError):
            bind_sockets(specs, 16)
        assert _open_fds() == opened_before
    result = bind(sockets, "127.0.0.1:0", "127.0.0.1:0")
    assert len(result) == 2


def _open_fds() -> set[int]:
    return set(int(fd) for fd in os.listdir("/proc/self/fd"))


# --- unix sockets ---------------------------------------------------------------------


def test_unix_socket(sockets, short_dir):
    path = short_dir / "app.sock"
    [sock] = bind(sockets, f"unix:{path}")
    assert sock.family == socket.AF_UNIX
    assert sock.getblocking() is False
    assert socket_url(sock) == f"unix:{path}"
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
    close_sockets([sock])
    assert not path.exists()


def test_unix_stale_socket_is_replaced(sockets, short_dir):
    path = short_dir / "stale.sock"
    old = socket.socket(socket.AF_UNIX)
    old.bind(str(path))
    old.close()  # the file stays, nobody listens: stale
    assert path.is_socket()
    [sock] = bind(sockets, f"unix:{path}")
    assert socket_url(sock) == f"unix:{path}"


def test_unix_live_socket_is_in_use(sockets, short_dir):
    path = short_dir / "live.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(BindError) as info:
            bind(sockets, f"unix:{path}")
        assert str(info.value) == f"cannot bind unix:{path}: address already in use"
        assert path.is_socket()


def test_unix_refuses_to_remove_a_regular_file(sockets, short_dir):
    path = short_dir / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(BindError) as info:
        bind(sockets, f"unix:{path}")
    assert str(info.value) == f"cannot bind unix:{path}: file exists and is not a socket"
    assert path.read_text() == "keep me"


def test_unix_missing_directory(sockets, short_dir):
    path = short_dir / "nodir" / "x.sock"
    with pytest.raises(BindError) as info:
        bind(sockets, f"unix:{path}")
    assert str(info.value).startswith(f"cannot bind unix:{path}: ")


def test_unix_path_too_long(sockets, short_dir):
    path = short_dir / ("x" * 200)
    with pytest.raises(BindError) as info:
        bind(sockets, f"unix:{path}")
    assert str(info.value).startswith(f"cannot bind unix:{path}: ")
    assert "\n" not in str(info.value)


def test_close_sockets_leaves_a_replaced_file_alone(sockets, short_dir):
    path = short_dir / "replaced.sock"
    [sock] = bind(sockets, f"unix:{path}")
    os.unlink(path)
    path.write_text("someone else's")
    close_sockets([sock])
    assert path.read_text() == "someone else's"
    close_sockets([sock])  # twice is fine


def test_the_same_inherited_fd_twice_is_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        spec = parse_bind(f"fd://{sock.fileno()}")
        with pytest.raises(BindError, match="is given twice"):
            bind_sockets([spec, spec], backlog=8)
