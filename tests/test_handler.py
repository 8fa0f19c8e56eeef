"""The ASGI handler (spaces_project/handler.py): each request's Django part on a reused thread.

Driven through the ASGI interface as a server would (asgiref's ApplicationCommunicator), with the
project's own middleware and a URLconf of small views defined here.
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.http import HttpResponse
from django.urls import path

from spaces_project.handler import GC_YOUNGEST_THRESHOLD, ReusedThreadASGIHandler

gate = threading.Event()


def where(request):
    return HttpResponse(str(threading.get_ident()))


def held(request):
    assert gate.wait(10), "the test never opened the gate"
    return HttpResponse(str(threading.get_ident()))


urlpatterns = [path("where", where), path("held", held)]


@pytest.fixture(autouse=True)
def _views_here(settings):
    settings.ROOT_URLCONF = __name__
    gate.clear()
    yield
    gate.set()  # never leave a thread waiting


def handler(**kwargs) -> ReusedThreadASGIHandler:
    return ReusedThreadASGIHandler(**{"settle_gc": False, **kwargs})


def scope(url: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def start(app, url: str) -> ApplicationCommunicator:
    communicator = ApplicationCommunicator(app, scope(url))
    await communicator.send_input({"type": "http.request", "body": b""})
    return communicator


async def answer(communicator: ApplicationCommunicator) -> tuple[int, dict, int]:
    """(status, headers, the thread that served it)."""
    head = await communicator.receive_output(10)
    body = await communicator.receive_output(10)
    await communicator.wait(10)
    headers = {k.decode().lower(): v.decode() for k, v in head["headers"]}
    return head["status"], headers, int(body["body"])


async def get(app, url: str) -> tuple[int, dict, int]:
    return await answer(await start(app, url))


async def test_requests_are_served_on_one_reused_thread_through_the_middleware():
    app = handler()
    status, headers, first = await get(app, "/where")
    assert status == 200
    assert headers["x-frame-options"] == "DENY"  # the project's middleware ran
    assert first != threading.get_ident()  # not on the event loop's thread
    assert [await get(app, "/where") for _ in range(3)] == [(200, headers, first)] * 3
    # Middleware and view form one synchronous chain, entered once per request.
    assert not asyncio.iscoroutinefunction(app._middleware_chain)


async def test_requests_in_flight_together_get_their_own_threads_which_are_kept():
    app = handler(threads=2)
    slow = await start(app, "/held")
    status, _, quick_thread = await get(app, "/where")  # answered while the other is held
    assert status == 200
    gate.set()
    _, _, slow_thread = await answer(slow)
    assert slow_thread != quick_thread
    assert len(app._idle) == 2
    later = {(await get(app, "/where"))[2] for _ in range(4)}
    assert later <= {slow_thread, quick_thread}


async def test_at_most_the_set_number_of_requests_run_at_once_the_rest_wait_their_turn():
    app = handler(threads=1)
    slow = await start(app, "/held")
    waiting = await start(app, "/where")
    assert await waiting.receive_nothing(0.5)  # no thread for it while the first is held
    gate.set()
    _, _, first = await answer(slow)
    status, _, second = await answer(waiting)
    assert status == 200
    assert first == second
    assert len(app._idle) == 1


async def test_a_client_leaving_mid_request_does_not_disturb_the_next_one():
    app = handler(threads=1)
    gone = await start(app, "/held")
    await asyncio.sleep(0.2)  # the view is running (and waiting at the gate) on the thread
    await gone.send_input({"type": "http.disconnect"})
    await gone.wait(10)  # the handler is done with that request, its view still running
    assert len(app._idle) == 1
    following = await start(app, "/where")
    gate.set()
    status, _, _ = await answer(following)
    assert status == 200


async def test_websocket_scopes_are_not_its_business():
    with pytest.raises(ValueError, match="websocket"):
        await handler()({"type": "websocket"}, None, None)


async def test_the_garbage_collector_is_settled_after_the_first_request():
    before = gc.get_threshold()
    app = ReusedThreadASGIHandler()
    try:
        await get(app, "/where")
        assert gc.get_threshold() == (GC_YOUNGEST_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 10_000
        frozen = gc.get_freeze_count()
        await get(app, "/where")
        assert gc.get_freeze_count() <= frozen  # once per process: nothing newer frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
