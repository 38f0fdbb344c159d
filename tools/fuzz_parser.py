"""Coverage-guided fuzzing of the sans-I/O request parser with atheris (libFuzzer).

Each input is two control bytes and the bytes a client sends:

* byte 0: bit 0 picks small limits (to reach the 413/414/431 paths), the other bits
  and byte 1 pick where the data is cut;
* the data is parsed three ways: whole, in two pieces cut at the chosen point, and in
  pieces of 1 to 7 bytes (sizes taken from the data itself).

A crash is any exception but :class:`~wsgiloop.http.ProtocolError`, a ProtocolError with
a status outside 400-599, a data event that is empty or not bytes, or outcomes that
differ between the three ways of feeding (heads, body bytes, END_OF_MESSAGE count,
error status).  When httptools is installed, the httptools backend is run the same
three ways too, and its outcomes must be those of the Python parser.

Run (see tools/README.md)::

    python tools/fuzz_parser.py --seed-corpus CORPUS_DIR   # write the seeds, then exit
    python tools/fuzz_parser.py CORPUS_DIR -max_total_time=600
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from wsgiloop.http import (
        END_OF_MESSAGE,
        NEED_DATA,
        HTTPLimits,
        ProtocolError,
        RequestHead,
        RequestParser,
    )
    try:
        from wsgiloop.http.httptools_parser import HttptoolsRequestParser
    except ImportError:
        HttptoolsRequestParser = None

SMALL = HTTPLimits(max_request_line=64, max_header_count=6, max_header_field_size=64,
                   max_head_size=256, max_body_size=64, max_chunk_line=24)


def summary(head: RequestHead) -> tuple:
    return (head.method, head.target, head.path, head.query, head.version, head.host,
            tuple(head.headers), head.keep_alive, head.expect_continue,
            head.content_length, head.chunked)


def run(pieces: list[bytes], limits: HTTPLimits | None, cls: type = RequestParser) -> tuple:
    """(events, error status or None) after feeding ``pieces`` in order."""
    parser = cls(limits)
    events: list = []
    body = bytearray()
    try:
        for piece in pieces:
            parser.feed(piece)
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                if event is END_OF_MESSAGE:
                    events.append(("body", bytes(body)))
                    events.append("end")
                    body.clear()
                    parser.start_next_request()
                elif isinstance(event, RequestHead):
                    events.append(summary(event))
                else:
                    if not isinstance(event, bytes) or not event:
                        raise AssertionError(f"bad data event {event!r}")
                    body += event
    except ProtocolError as exc:
        if not 400 <= exc.status <= 599:
            raise AssertionError(f"ProtocolError with status {exc.status}") from exc
        events.append(("body", bytes(body)))
        return tuple(events), exc.status
    events.append(("body", bytes(body)))
    return tuple(events), None


def test_one_input(raw: bytes) -> None:
    if len(raw) < 2:
        return
    limits = SMALL if raw[0] & 1 else None
    data = raw[2:]
    cut = ((raw[0] >> 1) | (raw[1] << 7)) % (len(data) + 1)
    whole = run([data], limits)
    halves = run([data[:cut], data[cut:]], limits)
    sizes = raw[1] or 1
    pieces, i, n = [], 0, 0
    while i < len(data):
        step = ((sizes >> (n % 8)) & 7) or 1
        pieces.append(data[i:i + step])
        i += step
        n += 1
    small = run(pieces, limits)
    if halves != whole or small != whole:
        raise AssertionError(f"split-dependent outcome for {data!r} (cut {cut}):\n"
                             f"  whole  {whole!r}\n  halves {halves!r}\n  pieces {small!r}")
    if HttptoolsRequestParser is not None:
        for split in ([data], [data[:cut], data[cut:]], pieces):
            other = run(split, limits, HttptoolsRequestParser)
            if other != whole:
                raise AssertionError(f"the backends differ on {data!r} split {split!r}:\n"
                                     f"  python    {whole!r}\n  httptools {other!r}")


def write_seeds(directory: Path) -> int:
    """The requests of tests/http_corpus.py as seed inputs, with a few cut points."""
    sys.path.insert(0, str(ROOT / "tests"))
    from http_corpus import CASES

    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for case in CASES:
        flag = 1 if case.limits is not None else 0
        for cut in (0, 7, 40):
            (directory / f"{case.id}-{cut}").write_bytes(
                bytes([flag | (cut << 1) & 0xFE, 0]) + case.data)
            count += 1
    return count


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-corpus":
        print(f"wrote {write_seeds(Path(sys.argv[2]))} seed inputs to {sys.argv[2]}")
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
