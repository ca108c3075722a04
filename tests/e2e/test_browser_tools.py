"""The demo page shows a model's reasoning (collapsed, apart from the answer) and its tool
calls with their results, in a real browser. The server is a real child process whose
``openai`` provider talks to a fake upstream on 127.0.0.1 (in a thread of this process) that
streams ``reasoning_content``, a ``calculate`` tool call, then the answer."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import trio

from tests.e2e.test_browser import browser  # noqa: F401 - the fixture
from tests.shells.test_openai_provider import Upstream

pytestmark = pytest.mark.browser

BASE = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def sse(deltas: list[dict[str, Any]], finish: str) -> bytes:
    chunks = [{**BASE, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
              for d in deltas]
    chunks.append({**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + \
        b"data: [DONE]\n\n"


TOOL_ROUND = sse([
    {"role": "assistant", "reasoning_content": "The user wants 6 times 7. "},
    {"reasoning_content": "I will use the calculator."},
    {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                     "function": {"name": "calculate", "arguments": ""}}]},
    {"tool_calls": [{"index": 0, "function": {"arguments": '{"expression": "6*7"}'}}]},
], "tool_calls")
ANSWER = sse([{"content": "The answer is "}, {"content": "**42**."}], "stop")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tool_server() -> Iterator[str]:
    upstream = Upstream(script=[(200, TOOL_ROUND, {}), (200, ANSWER, {})] * 10)
    upstream.port = free_port()
    threading.Thread(target=trio.run, daemon=True, args=(partial(
        trio.serve_tcp, upstream.handle, upstream.port, host="127.0.0.1"),)).start()
    env = {**os.environ, "STREAMER_PROVIDERS_OPENAI_BASE_URL":
           f"http://127.0.0.1:{upstream.port}/v1",
           "STREAMER_PROVIDERS_OPENAI_MODEL": "fake", "STREAMER_PERSISTENCE_ENABLED": "false"}
    process = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    url = None
    for line in process.stdout:
        if match := re.search(r"serving on (http://\S+) ", line):
            url = match.group(1)
            break
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
    try:
        assert url, "server did not start"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_reasoning_and_tool_calls_appear_apart_from_the_answer(
        browser: Any, tool_server: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(tool_server + "/")
    page.wait_for_function("() => window.streamerDemo && window.streamerDemo.editor")
    page.select_option("#provider", "openai")
    page.select_option("#pacing-mode", "off")
    page.check("#use-tools")
    page.fill("#prompt", "What is 6 times 7?")
    page.click("#btn-start")
    page.wait_for_function("() => document.body.dataset.streamState === 'complete'",
                           timeout=30_000)
    page.click("#reasoning summary")  # open the collapsed block
    shown = page.evaluate("""() => ({
        reasoningHidden: document.getElementById('reasoning').hidden,
        reasoning: document.getElementById('reasoning-text').textContent,
        tools: [...document.querySelectorAll('#tool-list li')].map(li => li.textContent),
        editor: window.streamerDemo.editor.getHTML(),
    })""")
    artifacts = tmp_path_factory.mktemp("artifacts")
    page.screenshot(path=str(artifacts / "reasoning-and-tools.png"))
    page.close()
    assert not errors, errors
    assert not shown["reasoningHidden"]
    assert shown["reasoning"] == "The user wants 6 times 7. I will use the calculator."
    assert len(shown["tools"]) == 1
    assert "calculate" in shown["tools"][0] and '{"expression":"6*7"}' in shown["tools"][0]
    assert "→ 42" in shown["tools"][0]
    assert "calculator" not in shown["editor"] and "6*7" not in shown["editor"]
    assert "<strong>42</strong>" in shown["editor"]
