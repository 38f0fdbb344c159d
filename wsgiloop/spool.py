"""Collecting one request body: in memory while small, then in a temporary file.

:class:`BodySpool` promises:

* Bytes given to :meth:`~BodySpool.write` are kept in memory until their total passes
  ``threshold``; from then on they all live in one anonymous temporary file made in
  ``directory`` (the system temporary directory when None).  The file has no name (it is
  unlinked at creation), so nothing is left on disk, whatever becomes of the process.
* :meth:`~BodySpool.finish` hands over the whole body as a readable binary file
  positioned at 0 -- a ``BytesIO``, or the temporary file, which the caller then owns and
  closes -- together with its size, and leaves the spool empty for the next body.
* A failure to make or fill the file (a full disk, no descriptor left, a missing or
  unwritable directory) raises the :class:`OSError` from :meth:`~BodySpool.write` or
  :meth:`~BodySpool.finish`, once, with the body already discarded: no descriptor stays
  open and the spool is empty again.  What to answer is the caller's business.
* :meth:`~BodySpool.discard` drops whatever is held; it may be called at any time, any
  number of times.

It does no I/O but its own file's, logs nothing, and is used from one thread.
"""

from __future__ import annotations

import io
import tempfile
from typing import IO


class BodySpool:
    """One request body at a time, in memory up to ``threshold`` bytes, then on disk."""

    __slots__ = ("threshold", "directory", "size", "_chunks", "_file")

    def __init__(self, threshold: int, directory: str | None = None) -> None:
        self.threshold = threshold
        self.directory = directory
        #: Bytes written since the spool was last empty.
        self.size = 0
        self._chunks: list[bytes] = []
        self._file: IO[bytes] | None = None

    @property
    def location(self) -> str:
        """The directory the temporary file goes to, for messages (found without I/O:
        the system temporary directory is named once :mod:`tempfile` has looked for it,
        which a server does at start-up, while it still has descriptors to spare)."""
        return self.directory or tempfile.tempdir or "the system temporary directory"

    @property
    def on_disk(self) -> bool:
        """True once the body has moved to the temporary file."""
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Add ``data``; raises OSError (the spool then discarded) if the file fails."""
        self.size += len(data)
        try:
            if self._file is not None:
                self._file.write(data)
            elif self.size > self.threshold:
                self._file = tempfile.TemporaryFile(dir=self.directory)
                for chunk in self._chunks:
                    self._file.write(chunk)
                self._chunks = []
                self._file.write(data)
            else:
                self._chunks.append(data)
        except OSError:
            self.discard()
            raise

    def finish(self) -> tuple[IO[bytes] | None, int]:
        """The body as a file positioned at 0 (None for no bytes at all) and its size.

        The spool is empty afterwards.  Raises OSError (the body discarded) if the rest
        of the file cannot be written out.
        """
        size = self.size
        spooled = self._file
        body: IO[bytes] | None
        if spooled is not None:
            try:
                spooled.seek(0)  # writes out what is still buffered
            except OSError:
                self.discard()
                raise
            body = spooled
        elif self._chunks:
            body = io.BytesIO(b"".join(self._chunks))
        else:
            body = None
        self._file = None
        self._chunks = []
        self.size = 0
        return body, size

    def discard(self) -> None:
        """Drop the body held so far and close its file."""
        spooled, self._file = self._file, None
        self._chunks = []
        self.size = 0
        if spooled is not None:
            try:
                spooled.close()
            except OSError:
                pass  # a buffered write that failed again on close: nothing to keep
