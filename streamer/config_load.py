"""Reading the configuration: defaults, a TOML file, ``STREAMER_*`` variables; every check.

:func:`load` builds a :class:`~streamer.config.Config` and records where each value came
from (``default``, ``file PATH``, ``env NAME``; ``flag --port`` is added by the command line)
for ``streamer config show``. It refuses, with a message that names the key:

- an unknown key in the file (:func:`difflib.get_close_matches` suggests the closest);
- an unknown ``STREAMER_*`` environment variable: the settings' own names, the project's
  other variables (:data:`KNOWN_VARIABLES`) and every variable a ``*_env`` setting names (the
  API keys' and JWT secret's) are known; anything else is a misspelling until proven
  otherwise (``STREAMER_SERVER_PROT`` names ``STREAMER_SERVER_PORT``);
- a value of the wrong type, a number out of its range (:data:`RANGES`, one rule per numeric
  setting; NaN and infinities never pass), and the cross-field rules of
  :func:`streamer.config._validate`;
- a ``[providers.NAME]`` table of an unknown ``type`` (built in: :data:`PROVIDER_TYPES`;
  plugins: the entry-point group ``streamer.providers``), and a ``providers.default`` nothing
  provides.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.config import (
    BUILTIN_SECTIONS,
    ENV_PREFIX,
    AnthropicProviderConfig,
    AuthConfig,
    Config,
    ConfigError,
    EchoProviderConfig,
    EngineConfig,
    LimitsConfig,
    LocalProviderConfig,
    NamedProviderConfig,
    OpenAIProviderConfig,
    PacingConfig,
    PersistenceConfig,
    PolicyConfig,
    ProvidersConfig,
    RenderConfig,
    ResumeConfig,
    ServerConfig,
    StreamsConfig,
    ToolsConfig,
    _coerce,
    _validate,
)

#: ``STREAMER_*`` variables that are not settings but that the project reads
KNOWN_VARIABLES = {
    "STREAMER_CONFIG": "the configuration file",
    "STREAMER_TOKEN": "the terminal client's credentials (streamer stream)",
    "STREAMER_FAULT_SEED": "the fault-injection tests' seed",
}
#: the built-in provider types a ``[providers.NAME]`` table may name, and their settings
PROVIDER_TYPES: dict[str, type] = {
    "openai_compat": OpenAIProviderConfig, "openai": OpenAIProviderConfig,
    "anthropic": AnthropicProviderConfig, "echo": EchoProviderConfig,
    "local": LocalProviderConfig,
}
#: the type of each built-in section
BUILTIN_TYPES = {"local": "local", "echo": "echo", "openai": "openai_compat",
                 "anthropic": "anthropic"}
OPENAI_PRESETS = ("openai", "perplexity", "ollama", "vllm", "llamacpp")
#: the entry-point group of provider plugins
PLUGIN_GROUP = "streamer.providers"
PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
INF = math.inf


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive bounds; ``open_low``: the low bound itself is excluded (``> low``)."""

    low: float = -INF
    high: float = INF
    open_low: bool = False

    def admits(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.low if self.open_low else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        if self.high == INF:
            return f"> {self.low:g}" if self.open_low else f">= {self.low:g}"
        if self.open_low:
            return f"> {self.low:g} and <= {self.high:g}"
        return f"{self.low:g}-{self.high:g}"


POSITIVE = Range(0, open_low=True)
NATURAL = Range(0)
ONE_UP = Range(1)
TEMPERATURE = Range(0, 2)

#: the range of every numeric setting, by settings class and field (named provider
#: instances use their type's rules); a test checks that none is missing
RANGES: dict[type, dict[str, Range]] = {
    ServerConfig: {
        "port": Range(0, 65_535), "heartbeat_interval_s": Range(0, 3_600, True),
        "send_timeout_s": Range(0, 3_600, True), "max_message_bytes": Range(256, 1 << 26),
        "max_json_depth": Range(1, 256), "max_json_number_digits": Range(1, 4_000),
        "max_invalid_messages": ONE_UP, "invalid_messages_window_s": ONE_UP,
        "max_control_messages_per_s": ONE_UP, "control_messages_burst": ONE_UP,
        "sse_retry_ms": Range(0, 3_600_000), "drain_timeout_s": Range(0, 86_400),
        "shutdown_retry_after_ms": Range(0, 3_600_000), "session_idle_timeout_s": POSITIVE,
        "gc_gen0_threshold": NATURAL, "proxy_trusted_hops": Range(0, 8),
        "gc_full_interval_s": Range(0, 86_400),
    },
    AuthConfig: {"jwt_leeway_s": Range(0, 3_600), "ws_auth_timeout_s": Range(0, 600, True)},
    PolicyConfig: {"daily_chars": NATURAL, "daily_tokens": NATURAL},
    LimitsConfig: {"max_sessions_per_identity": NATURAL,
                   "max_connections_per_identity": NATURAL,
                   "max_connections_per_address": NATURAL, "max_streams_per_identity": NATURAL,
                   "streams_per_minute": NATURAL, "idle_connection_timeout_s": NATURAL},
    StreamsConfig: {
        "grace_period_s": NATURAL, "max_response_chars": ONE_UP,
        "provider_timeout_s": POSITIVE, "provider_ttft_timeout_s": POSITIVE,
        "provider_retries": Range(0, 100), "provider_retry_base_ms": NATURAL,
        "provider_retry_budget_s": NATURAL, "backpressure_chars": ONE_UP,
        "paused_limit_s": POSITIVE, "max_queued": NATURAL, "provider_buffer": ONE_UP,
        "max_prompt_chars": ONE_UP, "max_trace_entries": Range(2),
    },
    PacingConfig: {"cps": POSITIVE, "max_lag_s": POSITIVE, "frame_interval_ms": NATURAL,
                   "frame_budget_per_s": POSITIVE, "progress_interval_ms": POSITIVE,
                   "min_cps": POSITIVE, "max_cps": POSITIVE},
    RenderConfig: {"max_render_chars": ONE_UP, "max_render_s": POSITIVE,
                   "offload_workers": Range(1, 64), "offload_max_jobs": ONE_UP,
                   "rerender_ratio": ONE_UP, "rerender_allowance_chars": NATURAL,
                   "offload_tail_chars": NATURAL},
    ResumeConfig: {"window_s": NATURAL, "max_finished_logs": NATURAL,
                   "max_finished_bytes": NATURAL},
    EngineConfig: {"replay_maxlen": ONE_UP, "lease_ttl_s": Range(0.5, 3_600),
                   "command_timeout_s": Range(0.05, 600)},
    PersistenceConfig: {"checkpoint_interval_s": POSITIVE, "retention_days": NATURAL},
    ToolsConfig: {"max_steps": Range(1, 64)},
    LocalProviderConfig: {"n_threads": Range(1, 256), "n_ctx": Range(16, 1 << 20),
                          "max_tokens": ONE_UP, "temperature": TEMPERATURE,
                          "repeat_penalty": POSITIVE, "token_buffer": ONE_UP,
                          "max_waiting": NATURAL},
    EchoProviderConfig: {"delta_chars": ONE_UP, "interval_ms": Range(0, 60_000),
                         "max_input_tokens": NATURAL},
    OpenAIProviderConfig: {"max_tokens": ONE_UP, "max_input_tokens": NATURAL,
                           "temperature": TEMPERATURE, "connect_timeout_s": POSITIVE},
    AnthropicProviderConfig: {"max_tokens": ONE_UP, "max_input_tokens": NATURAL,
                              "thinking_budget_tokens": NATURAL,
                              "connect_timeout_s": POSITIVE},
}


@dataclass(frozen=True, slots=True)
class Loaded:
    """A configuration and where each setting's value came from (dotted key → ``default``,
    ``file PATH`` or ``env NAME``)."""

    config: Config
    sources: dict[str, str]


def env_name(path: tuple[str, ...]) -> str:
    """``("server", "port")`` → ``STREAMER_SERVER_PORT``."""
    return ENV_PREFIX + "_".join(path).upper()


def settings(config: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any,
                                                                      type]]:
    """Every setting of ``config``: ``(path, value, its settings class)``, named provider
    instances included (as ``("providers", NAME, key)``)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from settings(value, (*path, f.name))
        elif f.name == "named" and isinstance(config, ProvidersConfig):
            for named in value:
                if dataclasses.is_dataclass(named.settings):
                    yield from settings(named.settings, (*path, named.name))
                else:  # a plugin's table
                    for key, item in named.settings or ():
                        yield (*path, named.name, key), item, dict
        else:
            yield (*path, f.name), value, type(config)


class _Builder:
    """Builds the settings classes from a file's tables and the environment, noting sources."""

    def __init__(self, env: Mapping[str, str], source: str) -> None:
        self.env = env
        self.source = source
        self.sources: dict[str, str] = {}

    def build(self, cls: type, data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        extra = {k: v for k, v in data.items() if k not in names or k == "named"}
        named: tuple[NamedProviderConfig, ...] = ()
        if cls is ProvidersConfig:
            named, extra = self.named(extra), {}
        if extra:
            raise ConfigError(self.unknown(sorted(extra), names, path))
        kwargs: dict[str, Any] = {"named": named} if cls is ProvidersConfig else {}
        for f in dataclasses.fields(cls):
            hint, key_path = hints[f.name], (*path, f.name)
            dotted = ".".join(key_path)
            if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                sub = data.get(f.name, {})
                if not isinstance(sub, Mapping):
                    raise ConfigError(f"{self.source}: [{dotted}] must be a table")
                kwargs[f.name] = self.build(hint, sub, key_path)
            elif f.name == "named" and cls is ProvidersConfig:
                continue
            elif (name := env_name(key_path)) in self.env:
                kwargs[f.name] = _coerce(self.env[name], hint, name)
                self.sources[dotted] = f"env {name}"
            elif f.name in data:
                kwargs[f.name] = _coerce(data[f.name], hint, f"{self.source}: {dotted}")
                self.sources[dotted] = f"file {self.source}"
            else:
                self.sources[dotted] = "default"
        return cls(**kwargs)

    def unknown(self, keys: list[str], names: set[str], path: tuple[str, ...]) -> str:
        where = ".".join(path) or "top level"
        hints = []
        for key in keys:
            close = difflib.get_close_matches(key, sorted(names - {"named"}), n=1)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        return f"{self.source}: unknown setting(s) in [{where}]: {', '.join(hints)}"

    def named(self, tables: Mapping[str, Any]) -> tuple[NamedProviderConfig, ...]:
        """``[providers.NAME]`` tables with a ``type``: more provider instances."""
        out = []
        for name, table in tables.items():
            where = f"{self.source}: [providers.{name}]"
            if not isinstance(table, Mapping) or "type" not in table:
                close = difflib.get_close_matches(name, [*BUILTIN_SECTIONS, "default"], n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(f"{self.source}: unknown setting(s) in [providers]: "
                                  f"{name}{hint}; a provider of your own is a table with a "
                                  "'type'")
            kind = table["type"]
            if not isinstance(kind, str) or not kind:
                raise ConfigError(f"{where}: type must be a provider type's name")
            if not PROVIDER_NAME.match(name) or name == "named":
                raise ConfigError(f"{where}: a provider's name is 1-32 of a-z, 0-9 and _, "
                                  "starting with a letter")
            rest = {k: v for k, v in table.items() if k != "type"}
            self.sources[f"providers.{name}.type"] = f"file {self.source}"
            if kind in PROVIDER_TYPES:
                settings_ = self.build(PROVIDER_TYPES[kind], rest, ("providers", name))
            else:  # a plugin's: its own settings, checked by the plugin
                settings_ = self.plugin_table(name, rest)
            out.append(NamedProviderConfig(name, kind, settings_))
        return tuple(out)

    def plugin_table(self, name: str, table: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """A plugin instance's settings as ``(key, value)`` pairs; the environment overrides
        a key the file gives (``STREAMER_PROVIDERS_<NAME>_<KEY>``), as a value of the file's
        value's type."""
        values = dict(table)
        for key, value in table.items():
            dotted, variable = f"providers.{name}.{key}", env_name(("providers", name, key))
            if variable in self.env:
                hint = type(value) if isinstance(value, bool | int | float | str) else \
                    tuple[str, ...]
                values[key] = _coerce(self.env[variable], hint, variable)
                self.sources[dotted] = f"env {variable}"
            else:
                self.sources[dotted] = f"file {self.source}"
        return tuple(sorted(values.items()))


def check_ranges(config: Config) -> None:
    """Every numeric setting within its :data:`RANGES` rule.

    Raises:
        ConfigError: the first one out of range, named with its range and value.
    """
    for path, value, cls in settings(config):
        rule = RANGES.get(cls, {}).get(path[-1])
        if rule is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not rule.admits(value):
            raise ConfigError(f"{'.'.join(path)} must be {rule.describe()} (got {value!r})")


def plugin_names() -> list[str]:
    """The provider types installed packages offer (entry points of :data:`PLUGIN_GROUP`;
    metadata only, nothing is imported)."""
    from importlib.metadata import entry_points
    return sorted({ep.name for ep in entry_points(group=PLUGIN_GROUP)})


def check_providers(config: Config) -> None:
    """Named instances of a known type, presets that exist, a default someone provides.

    Raises:
        ConfigError: naming the key.
    """
    providers = config.providers
    plugins = plugin_names()
    for named in providers.named:
        if named.name in BUILTIN_SECTIONS:  # pragma: no cover - the builder never makes one
            raise ConfigError(f"providers.{named.name}: a built-in provider's name")
        if named.type not in PROVIDER_TYPES and named.type not in plugins:
            known = ", ".join([*PROVIDER_TYPES, *plugins])
            raise ConfigError(f"providers.{named.name}.type: {named.type!r} is neither built "
                              f"in nor an installed plugin (entry points {PLUGIN_GROUP}); "
                              f"known: {known}")
    openai_like = [("openai", providers.openai)] + [
        (n.name, n.settings) for n in providers.named
        if isinstance(n.settings, OpenAIProviderConfig)]
    for name, section in openai_like:
        if section.preset not in OPENAI_PRESETS:
            raise ConfigError(f"providers.{name}.preset must be one of "
                              f"{', '.join(OPENAI_PRESETS)}")
    offered = {*BUILTIN_SECTIONS, *(n.name for n in providers.named), *plugins,
               *config.policy.providers}
    if providers.default not in offered:
        close = difflib.get_close_matches(providers.default, sorted(offered), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"providers.default: no provider is called {providers.default!r}"
                          f"{hint}; choose one of {', '.join(sorted(offered))}")


def check_environment(env: Mapping[str, str], config: Config) -> None:
    """Every ``STREAMER_*`` variable in ``env`` is a setting, one of
    :data:`KNOWN_VARIABLES` or named by a ``*_env`` setting.

    Raises:
        ConfigError: the first unknown one, with the closest setting's variable.
    """
    names = {env_name(path): ".".join(path) for path, _value, _cls in settings(config)}
    referenced = {value for path, value, _cls in settings(config)
                  if path[-1].endswith("_env") and isinstance(value, str) and value}
    allowed = {*names, *KNOWN_VARIABLES, *referenced}
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX) or variable in allowed:
            continue
        close = difflib.get_close_matches(variable, sorted(names), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]} ({names[close[0]]})?" if close else \
            "; the settings are listed in config/streamer.toml"
        raise ConfigError(f"unknown environment variable {variable}{hint}")


def load(path: str | os.PathLike[str] | None = None,
         env: Mapping[str, str] | None = None) -> Loaded:
    """The configuration from defaults, an optional TOML file and the environment, checked.

    Args:
        path: a TOML file; ``None`` means ``$STREAMER_CONFIG`` if set, else defaults only.
        env: the environment (default ``os.environ``).

    Raises:
        ConfigError: see the module docstring.
    """
    env = os.environ if env is None else env
    if path is None and env.get("STREAMER_CONFIG"):
        path = env["STREAMER_CONFIG"]
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    builder = _Builder(env, source)
    config = typing.cast(Config, builder.build(Config, data, ()))
    check_environment(env, config)
    check_ranges(config)
    _validate(config)
    check_providers(config)
    return Loaded(config, builder.sources)


def to_toml_defaults() -> str:  # pragma: no cover - used to regenerate config/streamer.toml
    """Render the defaults as TOML (the body of ``config/streamer.toml`` without comments)."""
    lines: list[str] = []

    def emit(obj: Any, path: tuple[str, ...]) -> None:
        scalars = [f for f in dataclasses.fields(obj)
                   if not dataclasses.is_dataclass(getattr(obj, f.name)) and f.name != "named"]
        if path and scalars:
            lines.append(f"\n[{'.'.join(path)}]")
        for f in scalars:
            value = getattr(obj, f.name)
            if isinstance(value, bool):
                rendered = "true" if value else "false"
            elif isinstance(value, tuple):
                rendered = "[" + ", ".join(f'"{v}"' for v in value) + "]"
            elif isinstance(value, str):
                rendered = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                rendered = repr(value)
            lines.append(f"{f.name} = {rendered}")
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                emit(value, (*path, f.name))

    emit(Config(), ())
    return "\n".join(lines).lstrip() + "\n"

