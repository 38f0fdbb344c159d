"""An application whose /grow request allocates memory until something stops it."""


def app(environ, start_response):
    if environ["PATH_INFO"] == "/grow":
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))  # 16 MiB, touched (zero-filled) at once
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
