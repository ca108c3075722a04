"""``streamer trace STREAM_ID``: a stream's trace in the terminal, one line per entry.

Reads ``GET /api/streams/{stream_id}/trace`` (``docs/protocol.md``, "Other endpoints"; the
entry names in :mod:`streamer.runtime.trace`) with the terminal client's credentials
(``--token`` or ``$STREAMER_TOKEN``, sent as ``Authorization: Bearer``) and prints::

    stream s_… · done · echo (echo) · finish cancelled
        0.000 ms  generation     queued               provider='echo' max_tokens=…
      412.118 ms  generation     cancel_requested     reason='stop from client'  ◀ stop …
      412.118 ms  provider call  provider_call_closed closed_by='cancel' reason=… since_…

Each entry's lane is the scope it belongs to (:func:`lane`: the provider call, the
generation, each subscription by its connection id, the heartbeat), the same lanes the demo
page's timeline draws (``static/demo/trace-timeline.js``). Cancel causes (:func:`cause`: a
cancel's reason, an error's code) are marked and, on a terminal, shown in bold red (``rich``);
into a pipe or file the lines are plain text. ``--json`` prints the endpoint's answer as it
came (one JSON object).

Exit status: 0 printed; 1 the server refused (``stream_not_found``, ``forbidden``,
``unauthorized``: the code on stderr); 3 the server could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from typing import Any, TextIO
from urllib.parse import quote

__all__ = ["add_arguments", "cause", "format_entry", "lane", "run_trace"]

#: the provider call's scope: its opening and closing, the first token, retries, waiting
PROVIDER_EVENTS = frozenset({"provider_call_opened", "provider_call_closed", "first_token",
                             "retry", "waiting"})
#: the fields a line shows in its columns, not again in its detail
SHOWN = frozenset({"t_ms", "event"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``streamer trace``'s options, on its sub-parser."""
    from streamer.clients.terminal.options import TOKEN_ENV

    parser.description = "Print a stream's trace: what happened to it and when."
    parser.add_argument("stream_id", metavar="STREAM_ID", help="the stream's id (s_…)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--token", help=f"API key or JWT (default: ${TOKEN_ENV}), sent as "
                        "'Authorization: Bearer'")
    parser.add_argument("--json", action="store_true",
                        help="print the endpoint's JSON answer as it came")


def lane(entry: dict[str, Any]) -> str:
    """The scope an entry belongs to: ``provider call``, ``heartbeat``,
    ``subscription <connection id>`` (an entry with a ``connection``), else ``generation``
    (the stream's own: queued, started, backpressure, tools, cancel, error, completed)."""
    event = entry.get("event")
    if event in PROVIDER_EVENTS:
        return "provider call"
    if event == "heartbeat":
        return "heartbeat"
    if entry.get("connection"):
        return f"subscription {entry['connection']}"
    return "generation"


def cause(entry: dict[str, Any]) -> str | None:
    """Why the stream (or its provider call) ended, if this entry says: a cancel's
    ``reason`` (``cancel_requested``, ``cancelled``, a ``provider_call_closed`` by a cancel)
    or an error's ``code`` (``error``, a ``provider_call_closed`` by an error)."""
    event = entry.get("event")
    if event in ("cancel_requested", "cancelled") or (
            event == "provider_call_closed" and entry.get("closed_by") == "cancel"):
        return str(entry.get("reason") or "cancelled")
    if event == "error" or (event == "provider_call_closed"
                            and entry.get("closed_by") == "error"):
        return str(entry.get("code") or "error")
    return None


def format_entry(entry: dict[str, Any]) -> tuple[str, str | None]:
    """One entry's line (without its mark) and its cause, if any."""
    detail = " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={json.dumps(v)}"
                      for k, v in entry.items() if k not in SHOWN)
    line = (f"{float(entry.get('t_ms', 0)):>12.3f} ms  {lane(entry):<24} "
            f"{entry.get('event', '?'):<22} {detail}")
    return line.rstrip(), cause(entry)


def heading(body: dict[str, Any]) -> str:
    model = f" ({body['model']})" if body.get("model") else ""
    finish = f" · finish {body['finish_reason']}" if body.get("finish_reason") else ""
    return (f"stream {body.get('stream_id')} · {body.get('state')} · "
            f"{body.get('provider')}{model}{finish}")


def print_trace(body: dict[str, Any], out: TextIO) -> None:
    """The heading and one line per entry; causes marked ``◀ cause``, on a terminal in bold
    red (``rich``), else plain."""
    lines = [format_entry(entry) for entry in body.get("trace", [])]
    if not out.isatty():
        print(heading(body), file=out)
        for line, why in lines:
            print(f"{line}  ◀ {why}" if why else line, file=out)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, highlight=False, soft_wrap=True)
    console.print(Text(heading(body), style="bold"))
    for line, why in lines:
        text = Text(line, style="bold red" if why else "")
        if why:
            text.append(f"  ◀ {why}", style="bold red reverse")
        console.print(text)


def run_trace(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``streamer trace``: fetch and print; the exit status (module docstring)."""
    import trio

    from streamer.clients.terminal.http import Refused, request
    from streamer.clients.terminal.options import EXIT_DONE, EXIT_ERROR, EXIT_LOST, TOKEN_ENV

    token = args.token or os.environ.get(TOKEN_ENV) or None
    path = f"/api/streams/{quote(args.stream_id, safe='')}/trace"
    try:
        _, body = trio.run(partial(request, args.url.rstrip("/"), "GET", path, token))
    except Refused as exc:
        print(f"streamer: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"streamer: cannot reach {args.url}: {exc}", file=sys.stderr)
        return EXIT_LOST
    if args.json:
        print(json.dumps(body, ensure_ascii=False), file=out)
    else:
        print_trace(body, out)
    return EXIT_DONE
