"""``streamer stream``: the terminal client against a real server process that asks for an
API key (``auth.mode = "api_key"``; the key goes out as the WebSocket subprotocol
``bearer.<token>`` and ``Authorization: Bearer``, from ``--token`` or ``STREAMER_TOKEN``).

In a real terminal (Debian's ``tmux``: a detached session of a fixed size runs the client,
``capture-pane`` reads the screen, ``-e`` with its colours): a table with borders and columns,
lists with their markers, highlighted code, math as its LaTeX source; a connection cut in the
middle of the answer (``tests/faultproxy.py``, a TCP reset) resumed with the answer exact;
``--session`` continuing a conversation; Ctrl-C stopping the answer (the stream's trace says
so). Through pipes: ``--json`` (the events rebuild exactly the server's stored answer, across
a cut), the prompt from stdin, ``--system``, and one exit code per outcome. Every wait is
bounded.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from streamer.clients.terminal.link import backoff_s
from streamer.clients.terminal.options import (
    EXIT_DONE,
    EXIT_ERROR,
    EXIT_LOST,
    EXIT_STOPPED,
    EXIT_USAGE,
)
from streamer.clients.terminal.rendering import render_blocks, tail_html
from streamer.clients.terminal.view import Answer, progress_text
from streamer.render.markdown import Renderer
from streamer.render.ops import apply_op
from streamer.wire.events import op_from_chunk
from tests.e2e.test_browser_auth import ALICE, api_key_auth  # noqa: F401 - the autouse fixture
from tests.faultproxy import fault_proxy

COMMAND = [sys.executable, "-m", "streamer", "stream"]
ROOT = Path(__file__).resolve().parents[2]

#: what the terminal must draw as a person reads it
RICH = """\
# Fruit report

| name | value |
|------|------:|
| apples | 12 |
| pears | 7 |

- apples
- pears
  - conference

1. first
2. second

- [x] done
- [ ] todo

```python
def square(x):
    return x ** 2
```

Energy is $E = mc^2$ here.

$$
\\int_0^1 x^2\\,dx
$$
"""

#: a long answer: each paragraph is told apart by its number, the end by its marker
LONG = "\n\n".join(f"Paragraph {i:03d}: " + "lorem ipsum dolor " * 5 for i in range(120)) \
    + "\n\nTHE END"


def run_client(server: Any, *args: str, token: str | None = ALICE, timeout: float = 60,
               stdin: str | None = None, url: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    """The client with ``token`` in ``STREAMER_TOKEN`` (None: no such variable)."""
    env = {k: v for k, v in os.environ.items() if k != "STREAMER_TOKEN"}
    if token is not None:
        env["STREAMER_TOKEN"] = token
    return subprocess.run([*COMMAND, *args, "--url", url or server.base_url],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          input=stdin if stdin is not None else "")


def get_json(server: Any, path: str) -> Any:
    request = urllib.request.Request(server.base_url + path,
                                     headers={"Authorization": f"Bearer {ALICE}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def messages(server: Any, session_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get_json(server, f"/api/sessions/{session_id}/messages")[
        "messages"]
    return found


def events_of(stdout: str) -> list[dict[str, Any]]:
    """``--json`` output: one JSON object a line, nothing else."""
    return [json.loads(line) for line in stdout.splitlines()]


def rebuilt(events: list[dict[str, Any]]) -> str:
    """The document the events build (chunks and snapshots, in order)."""
    blocks: list[str] = []
    for ev in events:
        if ev["type"] == "chunk":
            apply_op(blocks, op_from_chunk(ev))
        elif ev["type"] == "snapshot":
            blocks = list(ev["blocks"])
    return "".join(blocks)


@pytest.fixture(scope="module", autouse=True)
def quick_echo() -> Any:
    """The module's server (started after this fixture) echoes 64 characters a delta, so the
    long answer takes seconds, not a minute."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STREAMER_PROVIDERS_ECHO_DELTA_CHARS", "64")
        yield


# ------------------------------------------------------------------ a real terminal: tmux


class Tmux:
    """One detached tmux server of our own (``-L``), one window of a fixed size."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"streamer-test-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp

    async def tmux(self, *args: str) -> str:
        with trio.fail_after(10):
            done = await trio.run_process(["tmux", "-L", self.socket, *args],
                                          capture_stdout=True, capture_stderr=True)
        return done.stdout.decode()

    async def run(self, name: str, client_args: list[str], *, stdin: str | None = None,
                  width: int = 100, height: int = 40) -> Path:
        """Run the client in a new window (``stdin``: a prompt to read, given as a file;
        else the terminal); the file its exit code goes to."""
        exit_file = self.tmp / f"{name}.exit"
        script = self.tmp / f"{name}.sh"
        redirect = ""
        if stdin is not None:
            (self.tmp / f"{name}.in").write_text(stdin)
            redirect = f" < {shlex.quote(str(self.tmp / f'{name}.in'))}"
        script.write_text(
            # a Ctrl-C reaches the whole foreground group: the shell outlives it (a trap with
            # a command; the client gets the default handler back) to write the exit code
            "#!/bin/sh\nunset NO_COLOR\ntrap 'true' INT\n"
            f"export STREAMER_TOKEN={shlex.quote(ALICE)} TERM=xterm-256color\n"
            f"cd {shlex.quote(str(ROOT))}\n"
            f"{shlex.join([*COMMAND, *client_args])}{redirect}\n"
            f"echo $? > {shlex.quote(str(exit_file))}.tmp\n"
            f"mv {shlex.quote(str(exit_file))}.tmp {shlex.quote(str(exit_file))}\n"
            "exec sleep 600\n")
        await self.tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                        f"sh {shlex.quote(str(script))}")
        return exit_file

    async def screen(self, name: str, colours: bool = False) -> str:
        """The window's text, its scrollback included (wrapped lines joined)."""
        return await self.tmux("capture-pane", "-p", "-J", *(["-e"] if colours else []),
                               "-S", "-", "-t", name)

    async def wait_for(self, name: str, text: str, limit_s: float = 30) -> str:
        """Poll the screen (another process draws it: nothing to wait on) until ``text``."""
        with trio.fail_after(limit_s):
            while text not in (screen := await self.screen(name)):  # noqa: ASYNC110 - a poll
                await trio.sleep(0.1)
        return screen

    async def wait_exit(self, exit_file: Path, limit_s: float = 60) -> int:
        """The client's exit code, once its script has written it."""
        path = trio.Path(exit_file)
        with trio.fail_after(limit_s):
            while not await path.exists():  # noqa: ASYNC110 - another process writes it
                await trio.sleep(0.1)
        return int(await path.read_text())


@asynccontextmanager
async def tmux_server(tmp: Path) -> AsyncIterator[Tmux]:
    tmux = Tmux(tmp)
    try:
        yield tmux
    finally:
        with trio.move_on_after(10):
            await trio.run_process(["tmux", "-L", tmux.socket, "kill-server"], check=False,
                                   capture_stderr=True)


async def test_tmux_draws_tables_lists_code_and_math(server_process: Any,
                                                      tmp_path: Path) -> None:
    async with tmux_server(tmp_path) as tmux:
        done = await tmux.run("rich", ["--provider", "echo", "--pacing", "fixed", "--cps",
                                       "400", "--url", server_process.base_url], stdin=RICH)
        assert await tmux.wait_exit(done) == EXIT_DONE, await tmux.screen("rich")
        screen = await tmux.screen("rich")
        colours = await tmux.screen("rich", colours=True)
    answer = screen[screen.index("Fruit report"):]
    assert re.search(r"┌─+┬─+┐", answer), answer  # the table: borders and two columns
    assert re.search(r"│ name +│ value │", answer), answer
    assert re.search(r"│ apples │ 12 +│", answer), answer
    assert re.search(r"└─+┴─+┘", answer), answer
    for line in ("• apples", "• pears", "  ◦ conference", "1. first", "2. second",
                 "[x] done", "[ ] todo", "def square(x):", "    return x ** 2",
                 "Energy is $E = mc^2$ here.", "$$ \\int_0^1 x^2\\,dx $$"):
        assert line in answer, (line, answer)
    for raw in ("# Fruit", "|---", "```", "- [x]", "**second"):  # no markdown left as it was typed
        assert raw not in answer, raw
    code_line = next(line for line in colours.splitlines()[::-1] if "square" in line)
    assert len(set(re.findall(r"\x1b\[[0-9;]*m", code_line))) >= 3, repr(code_line)
    assert "[stop · " in answer


async def test_tmux_a_cut_connection_resumes_and_the_answer_is_exact(
        server_process: Any, tmp_path: Path) -> None:
    port = int(server_process.base_url.rsplit(":", 1)[1])
    async with fault_proxy(port) as proxy, tmux_server(tmp_path) as tmux:
        proxy.cuts = [10**9, 6_000]  # the session's POST is never cut; the WebSocket is
        done = await tmux.run("cut", [
            "--provider", "echo", "--url", f"http://127.0.0.1:{proxy.port}",
            "--session", "tmux-cut-0001"], stdin=LONG)
        exit_code = await tmux.wait_exit(done)
        screen = await tmux.screen("cut")
        assert exit_code == EXIT_DONE, screen
        assert proxy.cut_count == 1 and proxy.connections >= 3
    stored = messages(server_process, "tmux-cut-0001")[-1]
    assert stored["markdown"] == LONG and stored["finish_reason"] == "stop"
    numbers = re.findall(r"^Paragraph (\d{3}):", screen, re.MULTILINE)
    assert numbers == [f"{i:03d}" for i in range(120)]  # each once, in order: nothing lost
    assert screen.count("THE END") == 1


@pytest.mark.parametrize("cut", [700, 2_500, 9_000])
async def test_json_across_a_cut_rebuilds_the_stored_answer(server_process: Any,
                                                             cut: int) -> None:
    port = int(server_process.base_url.rsplit(":", 1)[1])
    async with fault_proxy(port) as proxy:
        proxy.cuts = [10**9, cut]
        with trio.fail_after(60):
            done = await trio.run_process(
                [*COMMAND, LONG, "--provider", "echo", "--json", "--url",
                 f"http://127.0.0.1:{proxy.port}"], capture_stdout=True, capture_stderr=True,
                env={**os.environ, "STREAMER_TOKEN": ALICE}, check=False)
        assert proxy.cut_count == 1
    assert done.returncode == EXIT_DONE, done.stderr.decode()
    events = events_of(done.stdout.decode())
    assert [e["type"] for e in events].count("connected") >= 2
    complete = events[-1]
    assert complete["type"] == "stream_complete" and complete["markdown"] == LONG
    assert rebuilt(events) == complete["html"]
    stored = messages(server_process, complete["session_id"])[-1]
    assert stored["html"] == complete["html"]
    seqs = [e["seq"] for e in events if e["type"] == "chunk"]
    assert seqs == sorted(set(seqs))  # nothing applied twice
    second = [i for i, e in enumerate(events) if e["type"] == "connected"][1]
    if any(e["type"] == "chunk" for e in events[:second]):
        # a chunk applied before the cut: the reconnect resumed after it, exactly
        assert events[second]["resumed"] is True
        assert any(e["type"] == "stream_start" and e.get("resumed") for e in events[second:])
        assert not any(e["type"] == "snapshot" for e in events)


async def test_tmux_session_continues_a_conversation(server_process: Any,
                                                     tmp_path: Path) -> None:
    session = "tmux-conv-0001"
    async with tmux_server(tmp_path) as tmux:
        for turn, prompt in enumerate(("the first question", "and the **second** one")):
            done = await tmux.run(f"turn{turn}", [
                prompt, "--provider", "echo", "--session", session, "--system", "be short",
                "--url", server_process.base_url])
            assert await tmux.wait_exit(done) == EXIT_DONE
            screen = await tmux.screen(f"turn{turn}")
            assert f"session {session}" in screen
        assert "and the second one" in screen  # only this turn's answer is drawn
        assert "the first question" not in screen
    turns = messages(server_process, session)
    assert [(m["role"], m["markdown"]) for m in turns] == [
        ("user", "the first question"), ("assistant", "the first question"),
        ("user", "and the **second** one"), ("assistant", "and the **second** one")]
    # echo counts its input in characters: the second answer saw the first turn and system
    first, second = "the first question", "and the **second** one"
    assert turns[-1]["usage"]["input_tokens"] == 2 * len(first) + len(second) + len("be short")


async def test_tmux_ctrl_c_stops_the_answer(server_process: Any, tmp_path: Path) -> None:
    session = "tmux-stop-0001"
    async with tmux_server(tmp_path) as tmux:
        done = await tmux.run("stop", [
            LONG, "--provider", "echo", "--pacing", "fixed", "--cps", "300",
            "--session", session, "--url", server_process.base_url])
        await tmux.wait_for("stop", "Paragraph 003")
        # the progress line: shown of received characters, the time the rest needs (while
        # the model writes, lower bounds: backpressure holds it near the delivery)
        line = (await tmux.wait_for("stop", " left")).rstrip().splitlines()[-1]
        assert re.fullmatch(r"(?:[━╌]{20} )?[\d,]+/[\d,]+\+? chars · \d+\.\d s\+? left",
                            line), line
        await tmux.tmux("send-keys", "-t", "stop", "C-c")
        assert await tmux.wait_exit(done, limit_s=15) == EXIT_STOPPED
        screen = await tmux.screen("stop")
    assert "[cancelled · " in screen and "THE END" not in screen
    answer = messages(server_process, session)[-1]
    assert answer["finish_reason"] == "cancelled" and len(answer["markdown"]) < len(LONG)
    trace = get_json(server_process, f"/api/streams/{answer['message_id']}/trace")
    cancels = [e for e in trace["trace"] if e["event"] == "cancel_requested"]
    assert [e["reason"] for e in cancels] == ["stop from client"]


# ------------------------------------------------------------------ through pipes


def test_a_pipe_gets_the_rendered_text(server_process: Any) -> None:
    done = run_client(server_process, "Hello **bold** and `code` &amp; more.",
                      "--provider", "echo")
    assert done.returncode == EXIT_DONE, done.stderr
    assert done.stdout.strip() == "Hello bold and code & more."
    assert "[stop · " in done.stderr


def test_the_prompt_from_stdin_and_system(server_process: Any) -> None:
    for args in ((), ("-",)):
        done = run_client(server_process, *args, "--provider", "echo", "--json",
                          "--system", "sys", stdin="from *stdin*\n")
        assert done.returncode == EXIT_DONE, done.stderr
        complete = events_of(done.stdout)[-1]
        assert complete["markdown"] == "from *stdin*"
        assert complete["usage"]["input_tokens"] == len("from *stdin*") + len("sys")
    empty = run_client(server_process, "--provider", "echo", stdin="  \n")
    assert empty.returncode == EXIT_USAGE and "empty" in empty.stderr
    unknown = run_client(server_process, "x", "--no-such-option")
    assert unknown.returncode == EXIT_USAGE


def test_help_lists_the_exit_codes() -> None:
    done = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    for code in (EXIT_DONE, EXIT_ERROR, EXIT_USAGE, EXIT_LOST, EXIT_STOPPED):
        assert re.search(rf"^  {code} +\w", done.stdout, re.MULTILINE), done.stdout


def test_error_event_exits_with_the_error_code(server_process: Any) -> None:
    done = run_client(server_process, "hi", "--provider", "nonexistent")
    assert done.returncode == EXIT_ERROR
    assert "forbidden" in done.stderr  # the policy allows no such provider


def test_no_token_or_a_wrong_one_is_unauthorized(server_process: Any) -> None:
    for done in (run_client(server_process, "hi", "--provider", "echo", token=None),
                 run_client(server_process, "hi", "--provider", "echo", token="stk_wrong"),
                 run_client(server_process, "hi", "--provider", "echo", "--token", "stk_x")):
        assert done.returncode == EXIT_ERROR, done.stderr
        assert done.stderr.startswith("streamer: error unauthorized: "), done.stderr
        assert done.stdout == ""


def test_the_token_flag_wins_over_the_environment(server_process: Any) -> None:
    done = run_client(server_process, "flag", "--provider", "echo", "--token", ALICE,
                      token="stk_wrong")
    assert done.returncode == EXIT_DONE, done.stderr
    assert done.stdout.strip() == "flag"


def test_a_server_made_session_id_continues_that_session(server_process: Any) -> None:
    first = run_client(server_process, "one", "--provider", "echo", "--json")
    session = events_of(first.stdout)[-1]["session_id"]
    assert session.startswith("sess_")
    again = run_client(server_process, "two", "--provider", "echo", "--session", session)
    assert again.returncode == EXIT_DONE, again.stderr
    assert again.stdout.strip() == "two"  # the earlier answer, replayed on connect, is skipped
    assert [m["markdown"] for m in messages(server_process, session)] == [
        "one", "one", "two", "two"]
    unknown = run_client(server_process, "x", "--session", "sess_" + "A" * 22)
    assert unknown.returncode == EXIT_ERROR and "session_not_found" in unknown.stderr
    reserved = run_client(server_process, "x", "--session", "bad id!")
    assert reserved.returncode == EXIT_ERROR and "invalid_message" in reserved.stderr


def test_ctrl_c_through_a_pipe_sends_stop(server_process: Any) -> None:
    process = subprocess.Popen(
        [*COMMAND, LONG, "--provider", "echo", "--pacing", "fixed", "--cps", "300",
         "--json", "--token", ALICE, "--url", server_process.base_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    while json.loads(process.stdout.readline())["type"] != "chunk":
        pass  # the answer has started
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert process.returncode == EXIT_STOPPED, err
    complete = events_of(out)[-1]
    assert complete["type"] == "stream_complete" and complete["finish_reason"] == "cancelled"


async def test_a_connection_lost_for_good_exits_3(server_process: Any) -> None:
    with trio.fail_after(10):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        free = listener.socket.getsockname()[1]
        await listener.aclose()
    refused = run_client(server_process, "x", url=f"http://127.0.0.1:{free}")
    assert refused.returncode == EXIT_LOST and "cannot reach" in refused.stderr
    port = int(server_process.base_url.rsplit(":", 1)[1])
    async with fault_proxy(port) as proxy:
        proxy.cuts = [10**9] + [5] * 20  # every WebSocket is cut inside its handshake
        with trio.fail_after(60):
            done = await trio.run_process(
                [*COMMAND, "x", "--provider", "echo", "--retries", "2",
                 "--connect-timeout", "2", "--url", f"http://127.0.0.1:{proxy.port}"],
                capture_stdout=True,
                capture_stderr=True, env={**os.environ, "STREAMER_TOKEN": ALICE}, check=False)
    err = done.stderr.decode()
    assert done.returncode == EXIT_LOST, err
    assert "gave up after 2 retries" in err and err.count("reconnecting in") == 2


# ------------------------------------------------------------------ the pure parts


def _plain(blocks: list[str], width: int = 60) -> str:
    from rich.console import Console

    console = Console(width=width, color_system=None, file=open(os.devnull, "w"))
    with console.capture() as captured:
        console.print(render_blocks(blocks))
    return captured.get()


def test_rendering_of_each_element() -> None:
    text = _plain(Renderer().render_blocks(RICH + "\n> quoted\n\n---\n\n[x](https://e.org)\n"))
    assert "Fruit report" in text and "┌" in text and "│ pears  │ 7     │" in text
    assert "• apples\n• pears\n  ◦ conference" in text
    assert "1. first\n2. second" in text and "[x] done\n[ ] todo" in text
    assert "$E = mc^2$" in text and "    $$ \\int_0^1 x^2\\,dx $$" in text
    assert "▌ quoted" in text and "────" in text and "x <https://e.org>" in text
    assert _plain(["<ol start=\"9\">\n<li>a</li>\n<li>b</li>\n</ol>\n"]).splitlines() == [
        " 9. a", "10. b"]
    assert _plain(["", "<p>a</p>\n", ""]) == "a\n"  # a folded block shows nothing


def test_the_answer_drops_what_it_applied_and_keeps_the_cursor() -> None:
    answer = Answer()
    assert answer.cursor() is None
    answer.stream_id = "s1"
    chunk = {"type": "chunk", "stream_id": "s1", "seq": 1, "epoch": "e", "op": "append",
             "block": 0, "html": "<p>a</p>\n", "final": False}
    assert answer.accept(chunk) and not answer.accept(chunk)  # a replay is dropped
    assert answer.cursor() == ("s1", "e", 1)
    assert not answer.accept({"type": "snapshot", "seq": 0, "blocks": []})  # older
    assert answer.accept({"type": "snapshot", "seq": 3, "blocks": ["<p>abc</p>\n"]})
    assert answer.accept({"type": "stream_complete", "html": "<p>abcd</p>\n"})
    assert answer.blocks == ["<p>abcd</p>\n"] and answer.cursor() is None  # repaired
    stopped = Answer()
    stopped.stream_id = "s2"
    for seq, (html, final) in enumerate([("<p>a</p>\n", True), ("<p>b</p>\n", False)], 1):
        stopped.accept({**chunk, "stream_id": "s2", "seq": seq, "block": seq - 1, "html": html,
                        "final": final})
    # a stop with a backlog: the final answer is longer than what was delivered; the final
    # block a screen printed for good stays, the rest of the answer is one block
    stopped.accept({"type": "stream_complete", "html": "<p>a</p>\n<p>bc</p>\n<p>d</p>\n"})
    assert stopped.blocks == ["<p>a</p>\n", "<p>bc</p>\n<p>d</p>\n"]
    assert stopped.final == [True, True]


def test_backoff_and_progress_texts() -> None:
    assert [backoff_s(n, rand=lambda: 0) for n in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]
    assert backoff_s(0, rand=lambda: 0.999) == pytest.approx(0.25, abs=0.01)
    assert backoff_s(0, retry_after_ms=3_000) == 3.0
    assert progress_text({"received_chars": 100, "delivered_chars": 50, "eta_ms": 2_000,
                          "generation_done": True}, width=4) == "━━╌╌ 50/100 chars · 2.0 s left"
    assert progress_text({"received_chars": 90, "delivered_chars": 10, "eta_ms": 1_500,
                          "generation_done": False}) == "10/90+ chars · 1.5 s+ left"
    assert progress_text({"received_chars": 10, "delivered_chars": 10, "eta_ms": 0,
                          "generation_done": False}) == "10/10+ chars"
    assert progress_text({"received_chars": 10, "delivered_chars": 4, "eta_ms": None,
                          "backlog_chars": 6, "generation_done": True}, width=2) == (
        "━╌ 4/10 chars · paused")


def test_the_live_view_of_a_long_table_or_code_block_is_its_tail() -> None:
    table, code, items = Renderer().render_blocks(
        "| n | square |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(500))
        + "\n```python\n" + "".join(f"x_{i} = {i}\n" for i in range(500)) + "```\n\n"
        + "".join(f"- item {i}\n" for i in range(50)))
    shown = _plain([tail_html(table, 3)]).splitlines()
    assert shown[:3] == ["┌─────┬────────┐", "│ n   │ square │", "├─────┼────────┤"]
    assert shown[3:6] == ["│ 497 │ 247009 │", "│ 498 │ 248004 │", "│ 499 │ 249001 │"]
    assert _plain([tail_html(code, 2)]).splitlines() == ["x_498 = 498", "x_499 = 499"]
    assert tail_html(items, 3) == items  # other blocks whole
    assert tail_html(table, 1_000) == table and tail_html(code, 1_000) == code
