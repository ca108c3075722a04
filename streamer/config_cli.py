"""``streamer config check`` and ``streamer config show``.

``check`` loads the configuration as ``streamer serve`` would (file, environment, flags) and
runs every start-up check (:mod:`streamer.config_load`, ``[auth]``, ``[security]``): exit 0
when the server would start, 2 with the reason (naming the key) when it would not. It then
warns, still exiting 0, about providers the policy offers that cannot work yet: the ``local``
extra not installed, an API key's variable unset, a plugin that does not import.

``show`` prints the effective configuration as TOML, each value with where it came from
(``default``, ``file PATH``, ``env NAME``, ``flag --port``); values of keys that look like
secrets are masked, and a ``*_env`` setting says whether its variable is set (never its value).
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from streamer.config import Config, ConfigError, replace
from streamer.config_load import PLUGIN_GROUP, Loaded, load, settings

#: keys whose values are masked by ``config show``
SECRET_KEY = re.compile(r"(^|_)(secret|password|passwd|token|api_key|apikey|credentials?)$", re.I)


def add_parser(commands: Any) -> None:
    """The ``config`` command and its ``check`` and ``show`` subcommands."""
    config = commands.add_parser("config", help="check or show the effective configuration")
    sub = config.add_subparsers(dest="config_command", required=True)
    for name, text in (("check", "exit 0 if the server would start, 2 and the reason if not"),
                       ("show", "the effective configuration and where each value came from")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", help="a TOML file (default: $STREAMER_CONFIG)")
        command.add_argument("--host", help="as streamer serve --host")
        command.add_argument("--port", type=int, help="as streamer serve --port")


def load_with_flags(args: argparse.Namespace) -> Loaded:
    """The configuration ``streamer serve`` would run with: file, environment, then flags.

    Raises:
        ConfigError: any setting refused (the message names it).
    """
    loaded = load(args.config)
    flags: dict[str, Any] = {}
    if getattr(args, "host", None):
        flags["server.host"] = args.host
    if getattr(args, "port", None) is not None:
        flags["server.port"] = args.port
    sources = dict(loaded.sources)
    for key in flags:
        sources[key] = f"flag --{key.split('.')[-1]}"
    config = replace(loaded.config, **flags) if flags else loaded.config
    if flags:
        from streamer.config_load import check_ranges
        check_ranges(config)
    return Loaded(config, sources)


def run(args: argparse.Namespace) -> int:
    """``streamer config check|show``; the exit code."""
    try:
        loaded = load_with_flags(args)
        if args.config_command == "check":
            from streamer.security.identity import validate_auth
            from streamer.security.origins import check_security
            validate_auth(loaded.config, os.environ)
            check_security(loaded.config.security)
    except ConfigError as exc:
        print(f"streamer: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.config_command == "show":
        for line in show(loaded):
            print(line)
        return 0
    problems = list(setup_problems(loaded.config))
    for problem in problems:
        print(f"warning: {problem}")
    print("configuration OK" + (f" ({len(problems)} warning(s))" if problems else ""))
    return 0


def _render(key: str, value: Any) -> str:
    if SECRET_KEY.search(key) and value not in ("", None):
        return '"***"'
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def show(loaded: Loaded) -> Iterator[str]:
    """``config show``'s lines: ``[section]`` headers, ``key = value  # source``."""
    section: tuple[str, ...] = ()
    named = {n.name: n.type for n in loaded.config.providers.named}
    for path, value, _cls in settings(loaded.config):
        if path[:-1] != section:
            section = path[:-1]
            yield f"\n[{'.'.join(section)}]"
            if len(section) == 2 and section[1] in named:
                source = loaded.sources.get(".".join((*section, "type")), "file")
                yield f"{'type = ' + json.dumps(named[section[1]]):<44} # {source}"
        key = ".".join(path)
        note = loaded.sources.get(key, "default")
        if path[-1].endswith("_env") and isinstance(value, str) and value:
            note += f"; {value} is {'set' if os.environ.get(value) else 'not set'}"
        yield f"{path[-1] + ' = ' + _render(path[-1], value):<44} # {note}"


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setup_problems(config: Config) -> Iterator[str]:
    """What keeps a provider the policy offers from working: each a sentence saying what to
    install or set."""
    offered = set(config.policy.providers)
    sections: list[tuple[str, str, Any]] = [
        ("local", "local", config.providers.local),
        ("openai", "openai_compat", config.providers.openai),
        ("anthropic", "anthropic", config.providers.anthropic),
        *((n.name, n.type, n.settings) for n in config.providers.named)]
    for name, kind, section in sections:
        if name not in offered:
            continue
        if kind == "local" and importlib.util.find_spec("llama_cpp") is None:
            yield (f"providers.{name}: llama-cpp-python is not installed: pip install "
                   "'streamer[local]' (with CMAKE_ARGS=\"-DGGML_NATIVE=OFF\", see README)")
        if kind == "local" and section.model_path \
                and not os.path.isfile(os.path.expanduser(section.model_path)):
            yield f"providers.{name}.model_path: no file {section.model_path}"
        if kind in ("openai_compat", "openai"):
            from streamer.providers.openai_compat import resolve_preset
            section = resolve_preset(section)
        if kind in ("openai_compat", "openai", "anthropic") and section.api_key_env \
                and not os.environ.get(section.api_key_env) and not _loopback(section.base_url):
            yield (f"providers.{name}: set the environment variable {section.api_key_env} "
                   f"(providers.{name}.api_key_env) to its API key")
    yield from _plugin_problems(config, offered)


def _plugin_problems(config: Config, offered: set[str]) -> Iterator[str]:
    from importlib.metadata import entry_points
    wanted = {n.type for n in config.providers.named if n.name in offered}
    wanted |= offered
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name not in wanted:
            continue
        try:
            ep.load()
        except Exception as exc:  # a plugin's own failure: say which and why
            yield f"provider plugin {ep.name} ({ep.value}) does not import: {exc!r}"
