"""Listening sockets: parse bind addresses, bind them, and name them as URLs.

Promises this module keeps:

* :func:`parse_bind` accepts ``HOST:PORT``, ``[IPV6]:PORT``, ``:PORT``, ``PORT`` and
  ``unix:PATH``, and raises :class:`BindError`
  with one line for anything else.
* :func:`bind_sockets` returns listening, non-blocking, non-inheritable sockets, or
  raises :class:`BindError` (``cannot bind 127.0.0.1:8000: address already in use``)
  having closed whatever it had bound so far.  TCP sockets have ``SO_REUSEADDR``; every
  IPv6 socket has ``IPV6_V6ONLY``, so that ``[::]`` and ``0.0.0.0`` can be bound side by
  side.  All interfaces (``:PORT``) means IPv4 and, where the host has it, IPv6, on the
  same port even for port 0.
* A unix socket's path is reused only if it is a socket nobody listens on; any other
  existing file is left alone and the bind is refused.  :func:`close_sockets` removes
  the socket files this module created.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The port of a bind address given without one (gunicorn's too).
DEFAULT_PORT = 8000


class BindError(ValueError):
    """A bind address is malformed or cannot be bound; the message is one line."""


@dataclass(frozen=True)
class BindSpec:
    """One parsed bind address.

    ``kind`` is ``"tcp"``, ``"unix"`` or ``"fd"``.  For TCP, ``host`` is an IP address or
    a host name, or ``None`` for all interfaces; ``port`` may be 0 (any free port).  For
    unix, ``path`` is the socket file; for fd, ``fd`` an inherited listening socket.
    """

    kind: str
    host: str | None = None
    port: int | None = None
    path: str | None = None
    fd: int | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        if self.host is None:
            return f":{self.port}"
        return _host_port(self.host, self.port)


def _host_port(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_port(text: str, spec: str) -> int:
    if not text:
        raise BindError(f"bad bind address {spec!r}: missing port")
    if not text.isdigit() or not text.isascii():
        raise BindError(f"bad bind address {spec!r}: port {text!r} is not a number")
    port = int(text)
    if port > 65535:
        raise BindError(f"bad bind address {spec!r}: port {port} is out of range (0-65535)")
    return port


def _is_ipv6(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
    except (OSError, ValueError):
        return False
    return True


def _valid_hostname(host: str) -> bool:
    if len(host) > 253 or not host.isascii():
        return False
    labels = host.rstrip(".").split(".")
    return all(label and len(label) <= 63 and
               all(c.isalnum() or c in "-_" for c in label) and
               not label.startswith("-") and not label.endswith("-")
               for label in labels)


def parse_bind(text: str) -> BindSpec:
    """Parse one bind address; raise :class:`BindError` if it is malformed."""
    spec = text.strip()
    if not spec:
        raise BindError("bad bind address '': empty")
    if spec.startswith("fd://"):  # gunicorn's form for an inherited listening socket
        number = spec[len("fd://"):]
        if not number.isdigit() or not number.isascii() or int(number) > 2**31 - 1:
            raise BindError(f"bad bind address {spec!r}: {number!r} is not a file "
                            f"descriptor number")
        return BindSpec("fd", fd=int(number))
    if spec.startswith("unix:"):
        path = spec[len("unix://"):] if spec.startswith("unix://") else spec[len("unix:"):]
        if not path:
            raise BindError(f"bad bind address {spec!r}: missing socket path after 'unix:'")
        if "\0" in path:
            raise BindError(f"bad bind address {spec!r}: NUL in socket path")
        return BindSpec("unix", path=path)
    if spec.isdigit():
        return BindSpec("tcp", None, _parse_port(spec, spec))
    return _parse_tcp(spec[len("tcp://"):] if spec.startswith("tcp://") else spec, spec)


def _parse_tcp(address: str, spec: str) -> BindSpec:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT``, or a host alone (``HOST``, ``[IPv6]``),
    which takes port 8000 as in gunicorn.  ``spec`` is the text shown in errors."""
    if address.startswith("["):
        close = address.find("]")
        if close < 0:
            raise BindError(f"bad bind address {spec!r}: missing ']'")
        host = address[1:close]
        rest = address[close + 1:]
        if not _is_ipv6(host):
            raise BindError(f"bad bind address {spec!r}: {host!r} is not an IPv6 address")
        if not rest:
            return BindSpec("tcp", host, DEFAULT_PORT)
        if not rest.startswith(":"):
            raise BindError(f"bad bind address {spec!r}: expected ':PORT' after ']'")
        return BindSpec("tcp", host, _parse_port(rest[1:], spec))
    if "://" in address:
        raise BindError(f"bad bind address {spec!r}: give HOST:PORT, not a URL")
    host, sep, port_text = address.rpartition(":")
    if not sep:
        host, port = address, DEFAULT_PORT
    elif _is_ipv6(address) or _is_ipv6(host):
        raise BindError(f"bad bind address {spec!r}: put an IPv6 address in brackets, "
                        f"as in [::1]:8000")
    else:
        port = _parse_port(port_text, spec)
    if not host:
        return BindSpec("tcp", None, port)
    if not _valid_hostname(host):
        raise BindError(f"bad bind address {spec!r}: {host!r} is not a host name "
                        f"or IP address")
    return BindSpec("tcp", host, port)


# Unix socket files this module created, by socket: (path, st_dev, st_ino).
_unix_files: weakref.WeakKeyDictionary[socket.socket, tuple[str, int, int]] = (
    weakref.WeakKeyDictionary())

_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "address not available on this host",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EAFNOSUPPORT: "address family not supported",
}


def _reason(e: OSError) -> str:
    if e.errno in _REASONS:
        return _REASONS[e.errno]
    return (e.strerror or str(e)).lower()


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _tcp_socket(family: int, addr: tuple, backlog: int,
                reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _tcp_addresses(spec: BindSpec) -> list[tuple[int, tuple]]:
    """(family, sockaddr-without-port) pairs for a TCP spec, IPv4 first."""
    if spec.host is None:
        addrs: list[tuple[int, tuple]] = [(socket.AF_INET, ("0.0.0.0",))]
        if _has_ipv6():
            addrs.append((socket.AF_INET6, ("::", 0, 0)))
        return addrs
    try:
        infos = socket.getaddrinfo(spec.host, spec.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise BindError(f"cannot bind {spec}: cannot resolve {spec.host!r} ({e.strerror})")
    addrs = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        entry = (family, (sockaddr[0],) + tuple(sockaddr[2:]))
        if entry not in addrs:
            addrs.append(entry)
    addrs.sort(key=lambda a: a[0] != socket.AF_INET)
    if not addrs:
        raise BindError(f"cannot bind {spec}: no IPv4 or IPv6 address for {spec.host!r}")
    return addrs


_SKIPPABLE = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def _bind_tcp(spec: BindSpec, backlog: int, reuse_port: bool) -> list[socket.socket]:
    """Bind every address of ``spec``.  For a host name or all interfaces, an address
    the host cannot have (no IPv6, say) is skipped as long as another one binds.  With
    port 0 the later sockets take the first one's port, retrying if it is taken."""
    addrs = _tcp_addresses(spec)
    assert spec.port is not None
    may_skip = len(addrs) > 1 and (spec.host is None or not (
        _is_ipv6(spec.host) or _is_ipv4(spec.host)))
    tries = 5 if spec.port == 0 and len(addrs) > 1 else 1
    for attempt in range(tries):
        bound: list[socket.socket] = []
        port = spec.port
        try:
            for family, rest in addrs:
                addr = (rest[0], port) + rest[1:]
                try:
                    sock = _tcp_socket(family, addr, backlog, reuse_port)
                except OSError as e:
                    if may_skip and e.errno in _SKIPPABLE:
                        continue
                    if bound and e.errno == errno.EADDRINUSE and attempt + 1 < tries:
                        break  # our ephemeral port is taken in the other family: retry
                    raise BindError(f"cannot bind {_host_port(rest[0], port)}: "
                                    f"{_reason(e)}")
                bound.append(sock)
                port = sock.getsockname()[1]
            else:
                if not bound:
                    raise BindError(f"cannot bind {spec}: address not available on this host")
                return bound
        except BaseException:
            close_sockets(bound)
            raise
        close_sockets(bound)
    raise AssertionError("unreachable")


def _is_ipv4(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError):
        return False
    return True


def _bind_unix(spec: BindSpec, backlog: int) -> socket.socket:
    path = spec.path
    assert path is not None
    where = f"unix:{path}"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise BindError(f"cannot bind {where}: {_reason(e)}")
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise BindError(f"cannot bind {where}: file exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            try:
                os.unlink(path)  # stale: nobody is listening
            except FileNotFoundError:
                pass
            except OSError as e:
                raise BindError(f"cannot bind {where}: cannot remove stale socket "
                                f"({_reason(e)})")
        else:
            raise BindError(f"cannot bind {where}: address already in use")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as e:
        sock.close()
        raise BindError(f"cannot bind {where}: {_reason(e)}")
    except ValueError as e:  # e.g. path too long on some versions
        sock.close()
        raise BindError(f"cannot bind {where}: {e}")
    try:
        st = os.stat(path)
        _unix_files[sock] = (path, st.st_dev, st.st_ino)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as e:
        close_sockets([sock])
        raise BindError(f"cannot bind {where}: {_reason(e)}")
    return sock


def bind_sockets(specs: Iterable[BindSpec], backlog: int,
                 reuse_port: bool = False) -> list[socket.socket]:
    """Bind and listen on every spec; all or nothing (see the module docstring).

    ``reuse_port`` sets ``SO_REUSEPORT`` on TCP sockets, so that
    :func:`reuse_port_sibling` can open more listening sockets on the same address.
    """
    specs = list(specs)
    fds = [spec.fd for spec in specs if spec.kind == "fd"]
    for fd in fds:
        if fds.count(fd) > 1:
            raise BindError(f"fd://{fd} is given twice")
    sockets: list[socket.socket] = []
    try:
        for spec in specs:
            if spec.kind == "unix":
                sockets.append(_bind_unix(spec, backlog))
            elif spec.kind == "fd":
                sockets.extend(inherited_sockets([spec.fd]))  # type: ignore[list-item]
            else:
                sockets.extend(_bind_tcp(spec, backlog, reuse_port))
    except BaseException:
        close_sockets(sockets)
        raise
    return sockets


def close_sockets(sockets: Iterable[socket.socket]) -> None:
    """Close the sockets, removing unix socket files that :func:`bind_sockets` made
    (and that were not replaced since).  Safe to call more than once."""
    for sock in sockets:
        record = _unix_files.pop(sock, None)
        sock.close()
        if record is not None:
            path, dev, ino = record
            try:
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == (dev, ino) and stat.S_ISSOCK(st.st_mode):
                    os.unlink(path)
            except OSError:
                pass


def socket_url(sock: socket.socket, scheme: str = "http") -> str:
    """``http://127.0.0.1:8000``, ``https://[::1]:8000`` or ``unix:/path``."""
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        return f"unix:{name}"
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"


def inherited_sockets(fds: Iterable[int]) -> list[socket.socket]:
    """Sockets for already-listening file descriptors handed down by a parent process
    (``--fd``, a re-executing master, or systemd).  Raises :class:`BindError` for an
    fd that is not an open listening socket."""
    sockets = []
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)
        except OSError as e:
            raise BindError(f"cannot use inherited file descriptor {fd}: {_reason(e)}")
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET,
                                                                  socket.SO_ACCEPTCONN):
            sock.detach()
            raise BindError(f"inherited file descriptor {fd} is not a listening stream socket")
        sock.set_inheritable(False)
        sockets.append(sock)
    return sockets


def systemd_fds(environ: Mapping[str, str], pid: int) -> list[int]:
    """The file descriptors systemd socket activation passed (``LISTEN_FDS`` from fd 3),
    when ``LISTEN_PID`` names this process; else an empty list."""
    if environ.get("LISTEN_PID") != str(pid):
        return []
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    return list(range(3, 3 + count))


def reuse_port_sibling(sock: socket.socket, backlog: int) -> socket.socket | None:
    """A new listening socket on the address of ``sock`` (a TCP socket with
    ``SO_REUSEPORT``), for one worker; the kernel then spreads connections over all of
    them.  None for a socket that cannot have one (Unix, or no SO_REUSEPORT on it)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return None
    return _tcp_socket(sock.family, sock.getsockname(), backlog, reuse_port=True)
