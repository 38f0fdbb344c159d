"""The PEP 3333 gateway: runs a WSGI application for each request a connection hands over.

Promises:

* the environ carries every key PEP 3333 requires; ``PATH_INFO`` is percent-decoded
  and presented as latin-1, so the raw bytes survive; ``QUERY_STRING`` is raw;
* ``wsgi.input`` holds exactly the request body, received before the application runs
  (``wsgi.input_terminated`` is true); an ``Expect: 100-continue`` body is fetched, and
  ``100 Continue`` sent, when the application first reads it;
* ``start_response`` follows the exc_info rules, may be called late (during iteration),
  and returns a working ``write()`` callable;
* ``wsgi.file_wrapper`` responses over a real file go out with ``sendfile``;
* the response is streamed with back-pressure: iteration pauses while the client's
  write buffer is above its high-water mark, so a slow reader never makes the server
  hold a large response in memory (the ``write()`` callable waits likewise on worker
  threads; on the loop thread it cannot wait, and what it is given is queued); a client
  that takes nothing for ``send_timeout`` loses the connection, and the iterable is
  closed;
* the iterable's ``close()`` is always called, also when the client has gone;
* an exception in the application, or an invalid status or header, gives a 500 with no
  traceback to the client and the full traceback in the error log.

The package: :mod:`.environ` (the environ, ``wsgi.input``, ``wsgi.file_wrapper``),
:mod:`.threads` (worker threads and their responder), :mod:`.gateway` (calling the
application and streaming its result).
"""

from .environ import EnvironBuilder, FileWrapper
from .gateway import WSGIGateway

__all__ = ["EnvironBuilder", "FileWrapper", "WSGIGateway"]
