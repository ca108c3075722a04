"""Transports: socket framing only. Each one turns the connection runtime's events into its
frames (:mod:`streamer.wire.codecs`) and its socket's messages into control messages; the
connection's lifetime (outbox, writer, heartbeat, follower) is ``runtime/connection.py``.

================  ==========================================================================
module            socket
================  ==========================================================================
``websocket``     ``GET /ws/stream/{session_id}``: one JSON object per text frame, both ways
                  (hypercorn's WebSocket as ASGI messages, no framework in between)
``sse``           ``GET /api/sessions/{session_id}/events``: the event stream as an HTTP body
``aisdk``         ``POST /api/chat``: the AI SDK's UI message stream, a reader of the log
================  ==========================================================================
"""
