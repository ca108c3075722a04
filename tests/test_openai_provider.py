"""The ``openai`` provider against a real HTTP server on 127.0.0.1 replaying a transcript.

The fake upstream is a plain Trio TCP server (not a mock of the SDK), so the official
``openai`` SDK does its real HTTP and SSE parsing, and the upstream can see exactly when the
client closes its connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import trio

from streamer.config import OpenAIProviderConfig
from streamer.errors import ProviderError
from streamer.protocol import Message
from streamer.providers import Finish, ProviderRequest, TextDelta, Usage
from streamer.providers.openai_compat import OpenAIProvider

TRANSCRIPT = (Path(__file__).parent / "data" / "transcripts" / "openai_chat_stream.sse").read_bytes()


@dataclass
class Upstream:
    """A one-route HTTP/1.1 server: answers POST /v1/chat/completions."""

    status: int = 200
    body: bytes = TRANSCRIPT
    endless: bool = False
    requests: list[dict] = field(default_factory=list)
    closed_at: float | None = None
    port: int = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(body) < length:
            body += await stream.receive_some(65536)
        self.requests.append(json.loads(body))
        kind = b"text/event-stream" if self.status == 200 else b"application/json"
        await stream.send_all(b"HTTP/1.1 %d X\r\ncontent-type: %s\r\nconnection: close\r\n"
                              % (self.status, kind)
                              + (b"content-length: %d\r\n" % len(self.body)
                                 if self.status != 200 else b"") + b"\r\n")
        if not self.endless:
            await stream.send_all(self.body)
            await stream.aclose()
            return
        async with trio.open_nursery() as nursery:
            async def produce() -> None:
                i = 0
                while True:
                    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                             "model": "m", "choices": [{"index": 0, "delta": {
                                 "content": f"tok{i} "}, "finish_reason": None}]}
                    await stream.send_all(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    i += 1
                    await trio.sleep(0.02)

            nursery.start_soon(produce)
            while await stream.receive_some(1024):  # b"" once the client closed
                pass
            self.closed_at = trio.current_time()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> Upstream:
    server = Upstream()
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


def provider_for(server: Upstream) -> OpenAIProvider:
    return OpenAIProvider(OpenAIProviderConfig(base_url=f"http://127.0.0.1:{server.port}/v1",
                                               model="gpt-test", api_key_env="STREAMER_TEST_KEY"))


REQUEST = ProviderRequest((Message("user", "Say hello"),), system="Be brief.", max_tokens=16)


async def test_streams_text_usage_and_finish(upstream: Upstream) -> None:
    events = []
    async with provider_for(upstream).stream(REQUEST) as channel:
        async for item in channel:
            events.append(item)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hello **world**!"
    assert Usage(9, 3) in events and events[-1] == Finish("stop")
    sent = upstream.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["model"] == "gpt-test" and sent["max_tokens"] == 16


async def test_refused_key_names_the_setting(upstream: Upstream) -> None:
    upstream.status = 401
    upstream.body = b'{"error": {"message": "bad key", "type": "invalid_request_error"}}'
    with pytest.raises(ProviderError, match="STREAMER_TEST_KEY") as info:
        async with provider_for(upstream).stream(REQUEST) as channel:
            async for _ in channel:
                pass
    assert info.value.retryable is False


async def test_leaving_closes_the_upstream_connection_within_100ms(upstream: Upstream) -> None:
    upstream.endless = True
    async with provider_for(upstream).stream(REQUEST) as channel:
        received = 0
        async for item in channel:
            received += isinstance(item, TextDelta)
            if received == 3:
                left_at = trio.current_time()
                break
    with trio.fail_after(5):
        while upstream.closed_at is None:
            await trio.sleep(0.001)
    assert upstream.closed_at - left_at < 0.1
