"""wsgiloop: a WSGI server on its own epoll event loop."""

__version__ = "0.1.0"
