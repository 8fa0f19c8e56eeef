"""daphne's own fan-out, for comparison in bench/ws_fanout.py: a bare ASGI application (no Django,
no Channels) that relays every message a socket sends to every other socket, writing them in one
pass and yielding to the event loop every rooms.events.WRITE_BATCH sockets, as the Space hub
does. What is left between this and the `websockets` floor is the server's per-frame cost."""

import asyncio

WRITE_BATCH = 250  # rooms.events.WRITE_BATCH, not imported: this must not load Django

sends: dict[object, object] = {}


async def application(scope, receive, send):
    if scope["type"] != "websocket":
        return
    me = object()
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": '{"type":"hello"}'})
            sends[me] = send
        elif message["type"] == "websocket.receive":
            text = message.get("text")
            for i, (other, other_send) in enumerate(list(sends.items()), start=1):
                if other is not me:
                    await other_send({"type": "websocket.send", "text": text})
                if i % WRITE_BATCH == 0:
                    await asyncio.sleep(0)
        elif message["type"] == "websocket.disconnect":
            sends.pop(me, None)
            return
