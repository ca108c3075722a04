"""The streaming endpoints: where a connection's lifetime begins (``docs/protocol.md``,
"Transports").

==========================================  =================================================
``GET /ws/stream/{session_id}``             WebSocket: events out, control messages in
                                            (``?stream_id=&epoch=&last_seq=`` resumes);
                                            served before Quart (``ws_route``)
``GET /api/sessions/{session_id}/events``   SSE events (``Last-Event-ID`` or
                                            ``?last_event_id=`` resumes)
``POST /api/sessions/{session_id}/control`` one control message for an SSE connection
                                            (``?connection_id=``; without it, delivery
                                            controls go to every connection of the session)
``POST /api/chat``                          the Vercel AI SDK's UI message stream
``GET /api/chat/{chat_id}/stream``          its resume (``useChat({resume: true})``): the
                                            chat's running answer from its start, or 204
``POST /api/chat/{chat_id}/stop``           stop the chat's running answer (204)
==========================================  =================================================
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

from quart import Blueprint, Response, request

from streamer.errors import SessionNotFound
from streamer.runtime.session import Session
from streamer.runtime.stream import Stream
from streamer.transports.aisdk import ui_message_stream
from streamer.transports.sse import SSEBody, apply_control
from streamer.web.guard import identity
from streamer.web.http import (
    json_response,
    read_body,
    read_json,
    registry,
    streaming,
    valid_session_id,
)
from streamer.wire import aisdk
from streamer.wire.cursor import parse_event_id

#: headers of every event stream (no proxy buffering, no caching)
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

streams = Blueprint("streaming", __name__)


logger = logging.getLogger("streamer.web")


class HeldBody:
    """An SSE body that holds a connection slot (``[limits]``) until the response ends."""

    def __init__(self, body: SSEBody, slot: ExitStack) -> None:
        self.body = body
        self.slot = slot

    def __aiter__(self) -> HeldBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.body.__anext__()
        except BaseException:
            self.slot.close()
            raise

    async def aclose(self) -> None:
        self.slot.close()
        await self.body.aclose()


@streams.get("/api/sessions/<session_id>/events")
async def sse_events(session_id: str) -> Response:
    reg = registry()
    session = await reg.find_session(identity(), valid_session_id(session_id))
    last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    resume = parse_event_id(last_event_id) if last_event_id else None
    subject, address = identity().subject, request.remote_addr
    token = await reg.limits.reserve_connection(subject, address)
    slot = ExitStack()
    slot.enter_context(reg.limits.connection(subject, address, token))
    return streaming(Response(HeldBody(SSEBody(session, resume), slot),
                              mimetype="text/event-stream", headers=SSE_HEADERS))


@streams.post("/api/sessions/<session_id>/control")
async def sse_control(session_id: str) -> Response:
    """``202 {"ok": true}``; a bad message or a refusal answers this POST (its status):
    :func:`streamer.transports.sse.apply_control`."""
    reg = registry()
    session = await reg.find_session(identity(), valid_session_id(session_id))
    raw = await read_body(reg.config.server.max_message_bytes)
    await apply_control(session, request.args.get("connection_id"), raw)
    return json_response({"ok": True}, 202)


@streams.post("/api/chat")
async def ai_sdk_chat() -> Response:
    reg = registry()
    max_bytes = reg.config.server.max_message_bytes
    session_id, control = aisdk.parse_chat_request(await read_json(max_bytes), max_bytes)
    session, _ = await reg.create_session(identity(), session_id)
    stream = await session.start(control)
    return _ui_message_response(session, stream)


@streams.get("/api/chat/<chat_id>/stream")
async def ai_sdk_resume(chat_id: str) -> Response:
    """The AI SDK's resume request (``HttpChatTransport.reconnectToStream``): the chat's
    running answer as a UI message stream from its first chunk, then live; ``204`` when
    nothing runs (no such chat of this caller, or its last answer is over: the client has it
    from its stored messages). Chat ids are namespaced by owner: another identity's chat of
    the same id is not this caller's (``docs/security.md``, "Ownership")."""
    try:
        session = await registry().find_session(identity(), valid_session_id(chat_id))
    except SessionNotFound:
        return Response(b"", status=204)
    stream = session.current
    if stream is None or stream.state != "running":
        return Response(b"", status=204)
    return _ui_message_response(session, stream)


@streams.post("/api/chat/<chat_id>/stop")
async def ai_sdk_stop(chat_id: str) -> Response:
    """Stop the chat's running answer (``204``): the stop endpoint an AI SDK app calls when
    closing the response does not stop it (``aisdk.stop_on_disconnect = false``, for
    resumable streams). The partial answer is kept (``finish_reason: cancelled``)."""
    session = await registry().find_session(identity(), valid_session_id(chat_id))
    session.stop(None)
    return Response(b"", status=204)


def _ui_message_response(session: Session, stream: Stream) -> Response:
    stop = registry().config.aisdk.stop_on_disconnect
    return streaming(Response(ui_message_stream(session, stream, stop_on_disconnect=stop),
                              mimetype="text/event-stream", headers=aisdk.HEADERS))
