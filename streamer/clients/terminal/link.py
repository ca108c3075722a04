"""``streamer stream``: one answer, streamed to the terminal over a WebSocket that survives.

The flow: the session first (:func:`~streamer.clients.terminal.http.open_session`), then a
WebSocket (trio-websocket) to ``/ws/stream/{session_id}``; after the server's ``connected``
the client sends one ``start`` and applies the events of that stream (the first
``stream_start`` of a stream the session did not hold before) until its
``stream_complete``. Events of earlier streams, which a new connection replays, are skipped.

Reconnects follow the browser client's rules (``docs/client.md``, "Transports";
``streamer/static/src/reconnect.js``): a connection that breaks (closed, reset, or silent
for 2.5 times the server's ``heartbeat_ms``) is opened again after an exponential, jittered,
capped backoff (0.5 s doubling to 15 s, up to half of it at random, never below a
``retry_after_ms`` the server gave), asking for the events after the last ``seq`` applied
(``?stream_id=…&epoch=…&last_seq=N``), and any event at or below it is dropped, so the
answer ends exact. ``--retries`` attempts in a row fail: the connection is lost for good. If
it broke before the answer's ``stream_start``, the client asks the server whether the stream
exists (:func:`~streamer.clients.terminal.http.known_streams`) and sends ``start`` again
only when it does not.

Credentials (``docs/security.md``, "Where the token travels"): ``--token`` or
``STREAMER_TOKEN``, offered as the WebSocket subprotocols ``streamer`` + ``bearer.<token>``
(a token that is not an RFC 7230 ``token`` goes as ``Authorization: Bearer`` on the upgrade
instead), and ``Authorization: Bearer`` on HTTP.

Ctrl-C sends ``stop`` (of this answer) and exits once ``stream_complete`` says
``cancelled`` (at most :data:`STOP_WAIT_S` later); a second Ctrl-C exits at once. Exit
codes: :mod:`streamer.clients.terminal.options`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sys
from typing import Any
from urllib.parse import quote, urlencode

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from streamer.clients.terminal.http import Refused, SessionInfo, known_streams, open_session
from streamer.clients.terminal.http import refusal as http_refusal
from streamer.clients.terminal.options import (
    EXIT_DONE,
    EXIT_ERROR,
    EXIT_LOST,
    EXIT_STOPPED,
    EXIT_USAGE,
    TOKEN_ENV,
    UsageError,
    read_prompt,
)
from streamer.clients.terminal.view import (
    Answer,
    JsonScreen,
    LiveScreen,
    PlainScreen,
    Screen,
    progress_text,
    state_text,
)

__all__ = ["STOP_WAIT_S", "Dropped", "backoff_s", "run_terminal_client", "start_message"]

#: seconds Ctrl-C waits for the server's ``stream_complete`` after ``stop``
STOP_WAIT_S = 5.0
#: a connection silent for this many ``heartbeat_ms`` is dead (as the browser client)
HEARTBEAT_FACTOR = 2.5
#: the backoff (``reconnect.js`` ``DEFAULT_RECONNECT``): seconds, growth, random share
BACKOFF_INITIAL_S, BACKOFF_MAX_S, BACKOFF_FACTOR, BACKOFF_JITTER = 0.5, 15.0, 2.0, 0.5
#: seconds between two draws of the live screen
REFRESH_S = 1 / 15
#: error codes that end the run at once (a refusal of the connection or of the ``start``)
_FINAL_ERRORS = frozenset({"unauthorized", "forbidden", "session_not_found", "invalid_message",
                           "payload_too_large", "quota_exceeded", "rate_limited",
                           "unsupported_protocol", "stream_not_found", "internal_error"})
#: RFC 7230 §3.2.6 ``token``: what a WebSocket subprotocol may hold
_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Dropped(Exception):
    """The connection broke; the client reconnects."""


def backoff_s(attempt: int, retry_after_ms: float = 0,
              rand: Any = random.random) -> float:
    """Seconds before reconnect attempt ``attempt`` (0 for the first retry):
    ``0.5 * 2^attempt`` capped at 15, less up to half of it at random, never below the
    server's ``retry_after_ms`` (``reconnect.js`` ``backoffDelay``)."""
    delay = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * BACKOFF_FACTOR ** attempt)
    delay *= 1 - BACKOFF_JITTER * rand()
    return max(delay, retry_after_ms / 1000)


def start_message(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    """The ``start`` control the command line asks for (protocol.md, "Client → server")."""
    start: dict[str, Any] = {"type": "start", "prompt": prompt,
                             "pacing": {"mode": args.pacing}}
    if args.cps:
        start["pacing"]["cps"] = args.cps
    for key in ("provider", "model", "system", "max_tokens"):
        if getattr(args, key, None):
            start[key] = getattr(args, key)
    return start


class Run:
    """One run of the client: the connection loop, the events, Ctrl-C; :attr:`result`."""

    def __init__(self, args: argparse.Namespace, start: dict[str, Any], token: str | None,
                 session: SessionInfo, screen: Screen) -> None:
        self.args, self.start, self.token = args, start, token
        self.base = args.url.rstrip("/")
        self.session = session
        self.screen = screen
        self.answer = Answer()
        self.ws: WebSocketConnection | None = None
        self.start_sent = False
        self.stopping = False
        self.retry_after_ms = 0.0
        self.error: dict[str, Any] | None = None
        self.result: int | None = None
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------------ the run

    async def main(self) -> int:
        """Stream the answer; the exit code."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._sigint)
            nursery.start_soon(self._refresh)
            nursery.start_soon(self._connect_loop)
        self.screen.close(self.answer)
        return EXIT_LOST if self.result is None else self.result

    def finish(self, code: int) -> None:
        """The outcome is known: end the run with ``code`` (the first one set wins)."""
        if self.result is None:
            self.result = code
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()

    async def _refresh(self) -> None:
        while True:
            self.screen.tick()
            await trio.sleep(REFRESH_S)

    async def _connect_loop(self) -> None:
        attempt = 0
        while True:
            try:
                self.finish(await self._connect_once())
                return
            except Refused as exc:
                self.error = exc.error
                self.finish(EXIT_ERROR)
                return
            except (Dropped, OSError, HandshakeError, ConnectionClosed) as exc:
                if self.stopping:
                    self.finish(EXIT_STOPPED)
                    return
                if self.ws is not None:  # it had opened: the failures in a row start again
                    attempt = 0
                self.ws = None
                if attempt >= self.args.retries:
                    self.error = {"code": "connection_lost",
                                  "message": f"{_reason(exc)}; gave up after {attempt} retries"}
                    self.finish(EXIT_LOST)
                    return
                delay = backoff_s(attempt, self.retry_after_ms)
                attempt += 1
                self.screen.notice(f"connection lost ({_reason(exc)}); reconnecting in "
                                   f"{delay:.1f} s (attempt {attempt} of {self.args.retries})")
                self.retry_after_ms = 0
                await trio.sleep(delay)

    def _url(self) -> str:
        base = "ws" + self.base[4:] if self.base.startswith("http") else self.base
        url = f"{base}/ws/stream/{quote(self.session.session_id, safe='')}"
        cursor = self.answer.cursor()
        if cursor is None:
            return url
        stream_id, epoch, last_seq = cursor
        query = {"stream_id": stream_id, **({"epoch": epoch} if epoch else {}),
                 "last_seq": last_seq}
        return f"{url}?{urlencode(query)}"

    def _credentials(self) -> tuple[list[str], list[tuple[bytes, bytes]]]:
        """The subprotocols to offer and the upgrade's extra headers."""
        if not self.token:
            return ["streamer"], []
        if _TOKEN_CHARS.fullmatch(self.token):
            return ["streamer", f"bearer.{self.token}"], []
        return ["streamer"], [(b"authorization", f"Bearer {self.token}".encode())]

    async def _connect_once(self) -> int:
        """One connection, to the answer's end (its exit code) or until it breaks.

        Raises:
            Dropped: closed, reset or silent (then the caller reconnects).
            Refused: the server refused the connection or the ``start``.
        """
        subprotocols, headers = self._credentials()
        try:
            async with open_websocket_url(
                    self._url(), subprotocols=subprotocols, extra_headers=headers,
                    connect_timeout=self.args.connect_timeout, disconnect_timeout=2) as ws:
                return await self._follow(ws)
        except ConnectionRejected as exc:
            if exc.status_code in (401, 403, 404):
                raise http_refusal(exc.status_code, exc.body or b"") from None
            raise Dropped(f"HTTP {exc.status_code}") from None
        except trio.TooSlowError:
            raise Dropped("no answer within the connect timeout") from None

    async def _follow(self, ws: WebSocketConnection) -> int:
        connected = await self._receive(ws, self.args.connect_timeout)
        if connected.get("type") != "connected":
            outcome = self.on_event(connected)
            raise Dropped("no 'connected' event") if outcome is None else Refused(
                self.error or {"code": "internal_error", "message": "refused"})
        self.ws = ws
        self.screen.event(connected)
        silence_s = HEARTBEAT_FACTOR * float(connected.get("heartbeat_ms") or 15_000) / 1000
        await self._send_start(ws)
        while True:
            outcome = self.on_event(await self._receive(ws, silence_s))
            if outcome is not None:
                return outcome

    async def _receive(self, ws: WebSocketConnection, timeout_s: float) -> dict[str, Any]:
        with trio.move_on_after(timeout_s):
            try:
                message = await ws.get_message()
            except ConnectionClosed as exc:
                raise Dropped(f"closed: {exc.reason.code if exc.reason else '?'}") from None
            event = json.loads(message)
            if not isinstance(event, dict):
                raise Dropped("an event that is not a JSON object")
            return event
        raise Dropped(f"silent for {timeout_s:.0f} s")

    async def _send_start(self, ws: WebSocketConnection) -> None:
        """Send ``start`` once; after a reconnect that came before the answer's
        ``stream_start``, again only if the server has no new stream."""
        if self.start_sent:
            if self.answer.stream_id is not None:
                return
            now = await known_streams(self.base, self.session.session_id, self.token)
            if now - self.session.earlier:
                return  # the server has it: this connection follows it
        self.start_sent = True
        await ws.send_message(json.dumps(self.start))
        self.screen.status("sent; waiting for the answer…")

    # ------------------------------------------------------------------ events

    def on_event(self, ev: dict[str, Any]) -> int | None:
        """Apply one server event; the exit code once the answer is over."""
        stream_id = ev.get("stream_id")
        if stream_id is None:
            return self._session_event(ev)
        answer = self.answer
        if answer.stream_id is None:
            if ev.get("type") != "stream_start" or stream_id in self.session.earlier:
                return None  # an earlier stream's events, replayed to a new connection
            answer.stream_id = stream_id
        if stream_id != answer.stream_id or not answer.accept(ev):
            return None  # another stream's, or applied before the connection broke
        self.screen.event(ev)
        kind = ev.get("type")
        if kind in ("chunk", "snapshot"):
            self.screen.show(answer)
        elif kind == "progress":
            self.screen.status(progress_text(ev))
        elif kind in ("state", "stream_start"):
            text = state_text(ev)
            if text:
                self.screen.status(text)
        elif kind == "error":
            return self._stream_error(ev)
        elif kind == "stream_complete":
            self.screen.show(answer)
            return self._outcome(ev)
        return None

    def _session_event(self, ev: dict[str, Any]) -> int | None:
        self.screen.event(ev)
        if ev.get("type") != "error":
            return None
        if ev.get("code") == "server_shutting_down" or ev.get("code") not in _FINAL_ERRORS:
            self.retry_after_ms = float(ev.get("retry_after_ms") or 0)
            self.screen.notice(f"{ev.get('code')}: {ev.get('message')}")
            return None  # the server closes the connection; the client comes back
        self.error = ev
        return EXIT_ERROR

    def _stream_error(self, ev: dict[str, Any]) -> int | None:
        if ev.get("code") == "resume_gap":
            self.screen.notice("could not resume exactly; the server sent the whole answer")
            return None
        self.error = ev
        if ev.get("code") == "stream_not_found":
            return EXIT_ERROR  # the server forgot the answer: nothing to follow
        self.screen.notice(f"error {ev.get('code')}: {ev.get('message')}")
        return None

    def _outcome(self, ev: dict[str, Any]) -> int:
        reason = ev.get("finish_reason")
        if reason == "error" or self.error is not None:
            return EXIT_ERROR
        return EXIT_STOPPED if reason == "cancelled" else EXIT_DONE

    # ------------------------------------------------------------------ Ctrl-C

    async def _sigint(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                      ) -> None:
        """The first Ctrl-C sends ``stop`` and waits for the answer's end (bounded); a second
        one, or one while no connection is open, exits at once."""
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self.stopping or self.ws is None or not self.start_sent:
                    self.stopping = True
                    self.finish(EXIT_STOPPED)
                    return
                self.stopping = True
                self.screen.status("stopping…")
                stop: dict[str, Any] = {"type": "stop"}
                if self.answer.stream_id is not None:
                    stop["stream_id"] = self.answer.stream_id
                try:
                    await self.ws.send_message(json.dumps(stop))
                except ConnectionClosed:
                    self.finish(EXIT_STOPPED)
                    return
                assert self._nursery is not None
                self._nursery.start_soon(self._stop_deadline)

    async def _stop_deadline(self) -> None:
        await trio.sleep(STOP_WAIT_S)
        self.finish(EXIT_STOPPED)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _screen(args: argparse.Namespace) -> Screen:
    if args.json:
        return JsonScreen(sys.stdout, sys.stderr)
    if sys.stdout.isatty():
        return LiveScreen(sys.stdout)
    return PlainScreen(sys.stdout, sys.stderr)


def _report(run: Run | None, code: int, error: dict[str, Any] | None,
            session_id: str | None) -> None:
    """The last lines on stderr: the error, then ``[finish_reason · time · session]``."""
    if error is not None:
        print(f"streamer: error {error.get('code')}: {error.get('message')}", file=sys.stderr)
    complete = run.answer.complete if run is not None else None
    parts = []
    if complete is not None:
        parts.append(str(complete.get("finish_reason")))
        if complete.get("duration_ms") is not None:
            parts.append(f"{complete['duration_ms'] / 1000:.1f} s")
    elif code == EXIT_STOPPED:
        parts.append("stopped")
    if session_id:
        parts.append(f"session {session_id}")
    if parts:
        print(f"[{' · '.join(parts)}]", file=sys.stderr)


async def run_terminal_client(args: argparse.Namespace) -> int:
    """``streamer stream``: stream one answer to the terminal; the exit code
    (:mod:`streamer.clients.terminal.options`)."""
    try:
        return await _run(args)
    except KeyboardInterrupt:  # before the run's own Ctrl-C handling: nothing started
        return EXIT_STOPPED


async def _run(args: argparse.Namespace) -> int:
    try:
        prompt = read_prompt(args.prompt)
        if args.retries < 0 or args.connect_timeout <= 0:
            raise UsageError("--retries must be >= 0 and --connect-timeout > 0")
    except UsageError as exc:
        print(f"streamer stream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    token = args.token or os.environ.get(TOKEN_ENV) or None
    base = args.url.rstrip("/")
    try:
        session = await open_session(base, args.session, token)
    except Refused as exc:
        _report(None, EXIT_ERROR, exc.error, None)
        return EXIT_ERROR
    except OSError as exc:
        print(f"streamer: cannot reach {base}: {_reason(exc)}", file=sys.stderr)
        return EXIT_LOST
    run = Run(args, start_message(args, prompt), token, session, _screen(args))
    code = await run.main()
    _report(run, code, run.error, session.session_id)
    return code
