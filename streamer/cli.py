"""The ``streamer`` command: ``serve`` runs the server, ``stream`` is a terminal client.

``streamer serve [--host H] [--port P] [--config PATH]``
    hypercorn + quart-trio on Trio; the demo page at ``/``.
``streamer stream "prompt" [--provider P] [--url URL] [--pacing off|fixed|smooth] [--cps N]``
    connects over WebSocket, prints the answer as plain text while it streams (a progress line
    on a TTY), sends ``stop`` on Ctrl-C, and exits non-zero with the error code on ``error``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from streamer import __version__
from streamer.config import ConfigError, load_config, replace


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamer", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server and the demo page")
    serve.add_argument("--host", help="address to bind (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from config: 8000; 0 = any)")
    serve.add_argument("--config", help="a TOML file (default: $STREAMER_CONFIG, else defaults)")
    serve.add_argument("--log-level", default="INFO")
    stream = commands.add_parser("stream", help="stream one answer to the terminal")
    stream.add_argument("prompt")
    stream.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    stream.add_argument("--provider", help="local, echo or openai (default: the server's)")
    stream.add_argument("--model")
    stream.add_argument("--pacing", choices=("off", "fixed", "smooth"), default="off")
    stream.add_argument("--cps", type=float)
    stream.add_argument("--max-tokens", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=args.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            config = load_config(args.config)
            overrides = {}
            if args.host:
                overrides["server.host"] = args.host
            if args.port is not None:
                overrides["server.port"] = args.port
            config = replace(config, **overrides)
        except ConfigError as exc:
            print(f"streamer: configuration error: {exc}", file=sys.stderr)
            return 2
        from streamer.server import serve

        async def run() -> None:
            async def announce(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
                               ) -> None:
                await serve(config, task_status=task_status)

            async with trio.open_nursery() as nursery:
                binds = await nursery.start(announce)
                for bind in binds:
                    print(f"streamer: serving on {bind} (demo page at {bind}/)", flush=True)

        trio.run(run)
        return 0
    from streamer.clients.terminal import run_terminal_client
    return trio.run(run_terminal_client, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
