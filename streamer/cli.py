"""The ``streamer`` command: ``serve`` runs the server, ``stream`` is a terminal client.

``streamer serve [--host H] [--port P] [--config PATH] [--engine memory|redis] [--redis-url U]``
    hypercorn + quart-trio on Trio; the demo page at ``/``. ``--engine redis`` shares streams
    and sessions with other processes through Redis (``docs/engines.md``); it refuses to
    start when Redis does not answer.
``streamer stream ["prompt" | -] [--session ID] [--system S] [--json] [--provider P] [--url URL]
[--token T] …``
    the terminal client (``streamer/clients/terminal/``): makes or continues its session,
    draws the answer as it streams (tables, lists, highlighted code, math as LaTeX) with a
    progress line, resumes a dropped connection, sends ``stop`` on Ctrl-C; ``streamer stream
    --help`` lists the options and the exit codes.
``streamer trace STREAM_ID [--url URL] [--token T] [--json]``
    a stream's trace, one line per entry (ms, lane, event, detail; cancel causes marked):
    ``streamer/clients/trace.py``.
``streamer config check|show [--config PATH] [--host H] [--port P]``
    ``check``: exit 0 if ``serve`` would start (warnings for providers that cannot work yet),
    2 and the reason naming the key if not; ``show``: the effective configuration, each value
    with its source (default, file, env, flag), secrets masked (``streamer.config_cli``).
``streamer auth new-key --subject S [--id ID]``
    makes an API key: prints the key once (first line of stdout; only its hash is kept) and
    the ``[[keys]]`` entry to paste into ``auth.api_keys_file``.
"""

from __future__ import annotations

import argparse
import os
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
    serve.add_argument("--log-level", type=str.upper,
                       choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                       help="records at this level and above (default from config: INFO)")
    serve.add_argument("--log-format", choices=("text", "json"),
                       help="text lines or one JSON object per line (default from config: text)")
    serve.add_argument("--engine", choices=("memory", "redis"),
                       help="where streams' logs live (engine.kind; default from config: memory)")
    serve.add_argument("--redis-url", help="the redis engine's server (engine.redis_url)")
    from streamer.clients.terminal.options import add_arguments
    add_arguments(commands.add_parser("stream", help="stream one answer to the terminal"))
    from streamer.clients.trace import add_arguments as add_trace_arguments
    add_trace_arguments(commands.add_parser("trace", help="print a stream's trace"))
    auth = commands.add_parser("auth", help="credentials for auth.mode = api_key")
    auth_commands = auth.add_subparsers(dest="auth_command", required=True)
    new_key = auth_commands.add_parser("new-key", help="make an API key and its file entry")
    new_key.add_argument("--subject", required=True, help="the identity; sessions belong to it")
    new_key.add_argument("--id", help="the name shown in logs (default: SUBJECT-<6 hex>)")
    from streamer.config_cli import add_parser as add_config_parser
    add_config_parser(commands)
    return parser


def _new_key(args: argparse.Namespace) -> int:
    """``streamer auth new-key``: the key on stdout's first line, then the entry."""
    import secrets

    from streamer.security.apikeys import key_entry, new_key
    from streamer.security.identity import ANONYMOUS

    subject = args.subject.strip()
    if not subject or subject == ANONYMOUS.subject:
        print("streamer: --subject must be a non-empty name other than 'anonymous'",
              file=sys.stderr)
        return 2
    key = new_key()
    key_id = args.id or f"{subject}-{secrets.token_hex(3)}"
    print(key)
    print("\n# the key above is shown only once; add this entry to auth.api_keys_file:")
    print(key_entry(key, subject, key_id), end="")
    return 0


def _redis_answers(url: str) -> bool:
    """``engine.kind = "redis"``: whether Redis answers (else the reason is printed)."""
    from streamer.engines.redis_log import RedisUnavailable
    from streamer.runtime.replication import probe
    try:
        trio.run(probe, url)
    except RedisUnavailable as exc:
        print(f"streamer: engine.kind = \"redis\" but {exc}; start Redis or set "
              "engine.redis_url (--redis-url)", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "auth":
        return _new_key(args)
    if args.command == "trace":
        from streamer.clients.trace import run_trace
        return run_trace(args)
    if args.command == "config":
        from streamer.config_cli import run as run_config
        return run_config(args)
    if args.command == "serve":
        try:
            config = load_config(args.config)
            overrides = {}
            if args.host:
                overrides["server.host"] = args.host
            if args.port is not None:
                overrides["server.port"] = args.port
            if args.engine:
                overrides["engine.kind"] = args.engine
            if args.redis_url:
                overrides["engine.redis_url"] = args.redis_url
            config = replace(config, **overrides)
            from streamer.security.identity import validate_auth
            from streamer.security.origins import check_security
            validate_auth(config, os.environ)
            check_security(config.security)
        except ConfigError as exc:
            print(f"streamer: configuration error: {exc}", file=sys.stderr)
            return 2
        from streamer.observability.logs import configure_logging
        configure_logging(args.log_level or config.log.level,
                          args.log_format or config.log.format)
        if config.engine.kind == "redis" and not _redis_answers(config.engine.redis_url):
            return 1
        from streamer.server import serve

        async def run() -> None:
            async def announce(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
                               ) -> None:
                await serve(config, task_status=task_status)

            async with trio.open_nursery() as nursery:
                binds = await nursery.start(announce)
                for bind in binds:
                    root = f"{bind}{config.server.root_path.rstrip('/')}/"
                    print(f"streamer: serving on {bind} (demo page at {root})", flush=True)

        trio.run(run)
        return 0
    from streamer.clients.terminal.link import run_terminal_client
    return trio.run(run_terminal_client, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
