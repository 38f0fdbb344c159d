"""Native (wsgiloop.web) applications for the native benchmark (bench/native.py)."""

from wsgiloop import aio
from wsgiloop.web import Application, RequestHandler


class Hello(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(b"Hello World!")


class Dynamic(RequestHandler):
    """A body (so its ETag, and at times its length) that changes with every request."""

    count = 0

    def get(self) -> None:
        Dynamic.count += 1
        self.set_header("Content-Type", "text/plain")
        self.write(b"Hello visitor %d" % Dynamic.count)


changed = aio.Event()


class Wait(RequestHandler):
    """A long poll that waits until /release (or the client leaves)."""

    async def get(self) -> None:
        await changed.wait()
        self.write(b"released")


class Release(RequestHandler):
    def get(self) -> None:
        global changed
        waiting = changed.waiters
        event, changed = changed, aio.Event()
        event.set()
        self.write({"released": waiting})


class Waiting(RequestHandler):
    def get(self) -> None:
        self.write({"waiting": changed.waiters})


application = Application([(r"/", Hello), (r"/dynamic", Dynamic), (r"/wait", Wait),
                           (r"/release", Release), (r"/waiting", Waiting)])


class HelloWithoutETag(Hello):
    """The hello without the ETag (for bench/native_profile.py: what the ETag costs)."""

    def compute_etag(self) -> None:
        return None


without_etag = Application([(r"/", HelloWithoutETag)])
