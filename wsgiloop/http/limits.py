"""Size limits the parser enforces while reading, each answered with its own status."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HTTPLimits:
    """Bounds on one request.  A zero ``max_body_size`` means no limit.

    * ``max_request_line``: bytes in the request line, else 414;
    * ``max_header_count``: header fields, else 431;
    * ``max_header_field_size``: bytes in one field line, else 431;
    * ``max_head_size``: bytes in the request line and all fields together, else 431;
    * ``max_body_size``: decoded body bytes, else 413;
    * ``max_chunk_line``: bytes in one chunk-size line (with extensions), else 400.
    """

    max_request_line: int = 8190
    max_header_count: int = 100
    max_header_field_size: int = 8190
    max_head_size: int = 65536
    max_body_size: int = 1 << 30
    max_chunk_line: int = 4096
