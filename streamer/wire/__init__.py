"""The wire protocol, version 2 (``docs/protocol.md``): what crosses a socket, and nothing else.

=============  ==================================================================
module         owns
=============  ==================================================================
``events``     one frozen dataclass per server → client event, ``to_json``
``controls``   one frozen dataclass per client → server control, ``parse_control``
``cursor``     the resume cursor ``(stream_id, epoch, seq)``, SSE event ids, id rules
``codecs``     the only encoders: the JSON frame and SSE framing
``aisdk``      the Vercel AI SDK's UI message stream (``POST /api/chat``)
=============  ==================================================================

Pure: no I/O, no Trio, no Quart (``tests/test_layers.py`` checks the imports).
"""
