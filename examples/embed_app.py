"""streamer inside an application of its own: one custom tool, one custom provider.

Run it (from the repository, after ``make demo`` or ``make test`` made ``.venv``)::

    .venv/bin/python examples/embed_app.py

then open http://127.0.0.1:8100/: the site's own page, which links to streamer's demo page
under the prefix ``/streamer/``. Pick the provider ``almanac``, tick "Offer the server's tools"
and press Start: the provider asks for the tool ``moon_phase``, streamer runs it and the
provider writes its answer from the result.

What it shows (``docs/embedding.md``):

- ``streamer.load_config`` with a file of the example's own (``embed_app.toml``; the
  ``STREAMER_*`` variables still apply);
- a :class:`streamer.Streamer` owning the registry, a tool (``streamer_app.tool``) and a
  provider (``add_provider``) registered from Python;
- the site's own quart-trio app and streamer's, side by side under one server: hypercorn's
  ``TrioDispatcherMiddleware`` mounts streamer's under ``/streamer`` (its ASGI ``root_path``),
  and :meth:`streamer.Streamer.serve` serves both and drains the streams on Ctrl-C.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from hypercorn.middleware.dispatcher import TrioDispatcherMiddleware
from quart import Response
from quart_trio import QuartTrio

import streamer
from streamer import (
    Finish,
    Provider,
    ProviderRequest,
    TextDelta,
    ToolCallComplete,
    ToolCallStart,
    Usage,
)

HERE = Path(__file__).resolve().parent
PREFIX = "/streamer"
#: a new moon (2000-01-06 18:14 UTC) and the mean synodic month, in days
NEW_MOON = datetime(2000, 1, 6, 18, 14, tzinfo=UTC)
SYNODIC_DAYS = 29.530588853
PHASES = ["new moon", "waxing crescent", "first quarter", "waxing gibbous", "full moon",
          "waning gibbous", "last quarter", "waning crescent"]


# -- the custom tool --------------------------------------------------------------------------

def moon_phase(date: str) -> dict[str, Any]:
    """The moon's phase on a day (ISO date, e.g. 2026-12-24), from the mean synodic month.

    Raises:
        ValueError: not an ISO date (the model is told).
    """
    try:
        day = datetime.fromisoformat(date).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{date!r} is not an ISO date like 2026-12-24") from exc
    age = ((day - NEW_MOON).total_seconds() / 86_400) % SYNODIC_DAYS
    lit = (1 - math.cos(2 * math.pi * age / SYNODIC_DAYS)) / 2
    return {"date": date, "phase": PHASES[round(age / SYNODIC_DAYS * 8) % 8],
            "illuminated_percent": round(lit * 100)}


# -- the custom provider ----------------------------------------------------------------------

class Almanac(Provider):
    """A tiny rule-based "model": asked with the ``moon_phase`` tool offered, it calls it for
    today, then writes a short markdown answer from the result; otherwise it says how to ask.
    It behaves like any provider: its events stream, ``stop`` cancels it between deltas."""

    name = "almanac"
    sends_tools = True
    #: pause between deltas (s), so the answer visibly streams
    delay_s = 0.02

    def model_for(self, request: ProviderRequest) -> str:
        return "almanac-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        offered = {tool.name for tool in request.tools}
        if "moon_phase" in offered and not request.tool_rounds:
            today = datetime.now(UTC).date().isoformat()
            yield ToolCallStart("call_moon", "moon_phase")
            yield ToolCallComplete("call_moon", "moon_phase", {"date": today})
            yield Finish("tool_calls")
            return
        text = self.answer(request)
        for start in range(0, len(text), 6):
            await trio.sleep(self.delay_s)
            yield TextDelta(text[start:start + 6])
        yield Usage(sum(len(m.content) for m in request.messages), len(text), unit="chars")
        yield Finish("stop")

    @staticmethod
    def answer(request: ProviderRequest) -> str:
        if not request.tool_rounds:
            return ("## The almanac\n\nOffer me the **moon_phase** tool and I will tell you "
                    "tonight's moon.\n")
        result = request.tool_rounds[-1].results[0].content
        try:
            found = json.loads(result)
        except ValueError:
            return f"The tool failed: {result}\n"
        return (f"## The moon on {found['date']}\n\n"
                f"Tonight's moon is a **{found['phase']}**, "
                f"{found['illuminated_percent']} % lit.\n\n"
                "- computed by the `moon_phase` tool\n- written by the `almanac` provider\n")


# -- the site's own application ---------------------------------------------------------------

def site_app() -> QuartTrio:
    """The embedding application: its own pages, nothing of streamer's."""
    site = QuartTrio("almanac-site")

    @site.get("/")
    async def home() -> Response:
        return Response(
            "<!doctype html><title>Almanac</title><h1>The almanac site</h1>"
            f'<p><a id="open-streamer" href="{PREFIX}/">Ask the almanac</a> '
            "(streamer's demo page, under a path prefix)</p>", mimetype="text/html")

    return site


def build(config: streamer.Config) -> tuple[streamer.Streamer, Any]:
    """streamer with the tool and the provider, and the ASGI app serving the site and it."""
    streamer_app = streamer.Streamer(config)
    streamer_app.tool(moon_phase, description="The moon's phase on a day (an ISO date)",
                      parameters={"type": "object", "required": ["date"],
                                  "properties": {"date": {"type": "string", "format": "date"}}},
                      blocking=False)
    streamer_app.add_provider(Almanac())
    asgi = TrioDispatcherMiddleware({PREFIX: streamer_app.create_app(), "": site_app()})
    return streamer_app, asgi


async def main() -> None:
    config = streamer.load_config(HERE / "embed_app.toml")
    streamer_app, asgi = build(config)

    async def announce(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
                       ) -> None:
        await streamer_app.serve(asgi, task_status=task_status)

    async with trio.open_nursery() as nursery:
        for url in await nursery.start(announce):
            print(f"embed_app: serving on {url} (streamer at {url}{PREFIX}/)", flush=True)


if __name__ == "__main__":
    try:
        trio.run(main)
    except streamer.ConfigError as exc:
        sys.exit(f"embed_app: configuration error: {exc}")
