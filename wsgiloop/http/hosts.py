"""Host values (a ``Host`` field, or the authority of an absolute-form target)."""

from __future__ import annotations

__all__ = ["host_name"]


def host_name(host: str) -> str:
    """The name part of a Host value, without the port: ``Example.com:8080`` ->
    ``Example.com``, ``[::1]:80`` -> ``[::1]`` (an IPv6 literal keeps its brackets).

    The case is kept as sent; host names compare case-insensitively.
    """
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.partition(":")[0]
