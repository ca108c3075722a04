"""The HTTP surface: the quart-trio application and its routes (``docs/protocol.md``).

=================  ===========================================================================
module             owns
=================  ===========================================================================
``app``            ``create_app``: the application's lifecycle (the registry bound to the
                   server nursery, the store opened and closed, housekeeping), the error
                   handler, the demo page and ``/static/``
``rest``           JSON endpoints: health, status, sessions, messages, ``complete``, render,
                   traces
``streaming``      the streaming endpoints: SSE events and controls, the AI SDK chat
``ws_route``       the streaming WebSocket (``GET /ws/stream/{session_id}``), routed before
                   Quart sees the scope and served over ASGI by streamer itself
``guard``          Host, Origin, identity, security headers and the access log, for both
``http``           what the routes share: the registry, JSON responses, error statuses, bodies
=================  ===========================================================================
"""
