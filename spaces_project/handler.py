"""Django's ASGI handler, serving each request's Django part on one reused thread in one step.

Django's own handler, for every request, starts a thread (and, on the way out, a second one to
join it), runs the middleware in it, hops back to the event loop to resolve the view, and hops
into the thread again to call it. None of that is needed when every middleware and view is
synchronous, as all of ours are:

* a few threads are kept and reused: each request borrows one and gives it back (asgiref's
  `ThreadSensitiveContext(executor=...)`: one call at a time on one thread, as Django's
  thread-sensitive code expects). A thread keeps its database wrapper between requests; the
  connection itself still goes back to the pool when each request finishes;
* at most `SPACES_HTTP_THREADS` requests run their Django part at once; the others wait for a
  thread. Python runs one thread at a time, so more threads would not serve more pages: they would
  take the interpreter lock from each other at every database read (docs/benchmarks.md);
* the middleware chain is loaded in its synchronous form, so middleware and view run in one call
  on that thread, exactly as under WSGI.

Reading the body, sending the response and noticing a client that went away stay Django's code.

Once the first request has been served, the process's garbage collector is set for a server
(`settle_garbage_collector`).
"""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

# Collect the youngest generation every this many net allocations (Python's default: 700).
GC_YOUNGEST_THRESHOLD = 7_000


def settle_garbage_collector() -> None:
    """What the process has built by now (Django, Channels, Twisted, URL resolvers, compiled
    templates: ~110k objects) lives as long as the process, so it is moved out of the collector's
    sight; and a page allocates thousands of short-lived objects, so the youngest generation is
    collected every 7,000 allocations rather than every 700. Measured on the Space page under load
    (docs/benchmarks.md): collection time 0.33 → 0.13 ms per request, full-heap collections
    (~100 ms pauses every few seconds) rare and short."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNGEST_THRESHOLD, middle, oldest)


class ReusedThreadASGIHandler(ASGIHandler):
    def __init__(self, threads: int | None = None, settle_gc: bool = True):
        self.threads = threads or settings.SPACES_HTTP_THREADS
        self._idle: list[ThreadPoolExecutor] = []
        self._free: asyncio.Semaphore | None = None  # made on the server's event loop
        self._settle_gc = settle_gc
        super().__init__()

    def load_middleware(self, is_async=False):
        # Every middleware and view here is synchronous: one synchronous chain, called once.
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self._free is None:
            self._free = asyncio.Semaphore(self.threads)
        async with self._free:
            # At most `threads` requests are in here, so there is always a thread to borrow.
            executor = self._idle.pop() if self._idle else self._new_thread()
            try:
                async with ThreadSensitiveContext(executor=executor):
                    await self.handle(scope, receive, send)
            finally:
                # A request cancelled by its client may still be finishing on this thread: the
                # next one given it simply queues behind, on the same thread.
                self._idle.append(executor)
        if self._settle_gc:
            self._settle_gc = False
            settle_garbage_collector()

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    @staticmethod
    def _new_thread() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")
