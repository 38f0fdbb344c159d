"""Sans-I/O HTTP/1.1: request parsing and response framing.  No sockets, no loop."""

from .backends import parser_class
from .errors import ProtocolError
from .limits import HTTPLimits
from .parser import END_OF_MESSAGE, NEED_DATA, RequestHead, RequestParser
from .response import ResponseFramer, http_date

__all__ = ["END_OF_MESSAGE", "NEED_DATA", "HTTPLimits", "ProtocolError", "RequestHead",
           "RequestParser", "ResponseFramer", "http_date", "parser_class"]
