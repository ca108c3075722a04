"""``streamer stream``: the terminal client against a real server process that asks for an
API key (``auth.mode = "api_key"``; the key goes out as ``Authorization: Bearer``, from
``--token`` or ``STREAMER_TOKEN``). The client makes its session first (``POST
/api/sessions``), or claims the one ``--session`` names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from tests.e2e.test_browser_auth import ALICE, api_key_auth  # noqa: F401 - the autouse fixture

COMMAND = [sys.executable, "-m", "streamer", "stream"]


def run_client(server: Any, *args: str, token: str | None = ALICE,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The client with ``token`` in ``STREAMER_TOKEN`` (None: no such variable)."""
    env = {k: v for k, v in os.environ.items() if k != "STREAMER_TOKEN"}
    if token is not None:
        env["STREAMER_TOKEN"] = token
    return subprocess.run([*COMMAND, *args, "--url", server.base_url], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_prints_the_answer_as_plain_text(server_process: Any) -> None:
    done = run_client(server_process, "Hello **bold** and `code` &amp; more.",
                      "--provider", "echo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Hello bold and code & more."
    assert "[stop," in done.stderr


def test_error_event_exits_non_zero_with_its_code(server_process: Any) -> None:
    done = run_client(server_process, "hi", "--provider", "nonexistent")
    assert done.returncode == 1
    assert "forbidden" in done.stderr  # the policy allows no such provider


def test_no_token_or_a_wrong_one_is_unauthorized(server_process: Any) -> None:
    for done in (run_client(server_process, "hi", "--provider", "echo", token=None),
                 run_client(server_process, "hi", "--provider", "echo", token="stk_wrong"),
                 run_client(server_process, "hi", "--provider", "echo", "--token", "stk_x")):
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("streamer: error unauthorized: "), done.stderr
        assert done.stdout == ""


def test_the_token_flag_wins_over_the_environment(server_process: Any) -> None:
    done = run_client(server_process, "flag", "--provider", "echo", "--token", ALICE,
                      token="stk_wrong")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "flag"


def test_session_names_the_session_and_a_second_run_continues_it(server_process: Any) -> None:
    for prompt in ("first question", "second question"):
        done = run_client(server_process, prompt, "--provider", "echo",
                          "--session", "cli-doc-0001")
        assert done.returncode == 0, done.stderr
    url = f"{server_process.base_url}/api/sessions/cli-doc-0001/messages"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ALICE}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        messages = json.loads(response.read())["messages"]
    assert [(m["role"], m["markdown"]) for m in messages] == [
        ("user", "first question"), ("assistant", "first question"),
        ("user", "second question"), ("assistant", "second question")]
    refused = run_client(server_process, "x", "--session", "sess_mine00000000")
    assert refused.returncode == 1 and "invalid_message" in refused.stderr  # reserved ids


def test_ctrl_c_sends_stop_and_keeps_the_partial_answer(server_process: Any) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 8 for i in range(100))
    process = subprocess.Popen(
        [*COMMAND, text, "--provider", "echo", "--pacing", "fixed", "--cps", "200",
         "--token", ALICE, "--url", server_process.base_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()  # the first paragraph is out: the answer has started
    assert first.startswith("Paragraph 0:")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert process.returncode == 0, err
    assert "[cancelled," in err
    assert len(first + out) < len(text)
