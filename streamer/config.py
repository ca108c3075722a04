"""Typed, frozen configuration, validated once at start-up.

Sources, later ones win (like ``hypercorn.Config.from_toml`` plus ``starlette.config``'s
environment prefix):

1. the defaults below, which ``config/streamer.toml`` repeats key for key (a test keeps the
   two equal);
2. a TOML file (``streamer serve --config PATH`` or ``STREAMER_CONFIG=PATH``);
3. environment variables ``STREAMER_<SECTION>_<KEY>``, e.g. ``STREAMER_SERVER_PORT=9000``,
   ``STREAMER_PACING_CPS=120``, ``STREAMER_PROVIDERS_LOCAL_N_THREADS=2``.

Provider API keys never live in a file: each provider names the environment variable that
holds its key (``api_key_env``) and the key is read from there at call time.

Units are in the key names (``_s``, ``_ms``, ``_chars``, ``_bytes``, ``cps`` = characters
per second). :func:`load_config` raises :class:`ConfigError` on an unknown key, a value of
the wrong type, or a value out of range, naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streamer.config_providers import (  # noqa: F401  (re-exported: the one config namespace)
    BUILTIN_SECTIONS,
    AnthropicProviderConfig,
    EchoProviderConfig,
    LocalProviderConfig,
    NamedProviderConfig,
    OpenAIProviderConfig,
    ProvidersConfig,
)

ENV_PREFIX = "STREAMER_"
PacingMode = Literal["off", "fixed", "smooth"]


class ConfigError(ValueError):
    """A configuration value is unknown, malformed or out of range."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    #: the path prefix the app is served under behind a proxy that passes it on (ASGI
    #: ``root_path``, e.g. ``"/streamer"``; empty = the root); the demo page follows it
    root_path: str = ""
    #: the demo page at ``/`` (an embedding application may leave it out)
    serve_demo: bool = True
    #: how often each connection gets a heartbeat when nothing else was sent
    heartbeat_interval_s: float = 15.0
    #: a write (event, heartbeat) that does not complete in time marks the peer dead
    send_timeout_s: float = 10.0
    #: largest control message accepted (WebSocket frame or control POST body)
    max_message_bytes: int = 65_536
    #: client JSON (control messages, request bodies): arrays and objects nested at most
    #: this deep, checked before parsing
    max_json_depth: int = 32
    #: ... and number literals of at most this many characters (digits, sign, point, exponent)
    max_json_number_digits: int = 64
    #: a WebSocket that sends this many invalid or over-rate control messages within
    #: ``invalid_messages_window_s`` is closed with 1008 (valid messages do not reset the count)
    max_invalid_messages: int = 10
    invalid_messages_window_s: int = 60
    #: control messages per connection: at most ``control_messages_burst`` in any
    #: ceil(burst / per_s) seconds; beyond, ``rate_limited`` (SSE's control POST: 429)
    max_control_messages_per_s: int = 20
    control_messages_burst: int = 40
    #: the SSE ``retry:`` hint sent to EventSource clients
    sse_retry_ms: int = 2_000
    #: on SIGTERM/SIGINT, running streams get this long to finish before they are cancelled
    drain_timeout_s: float = 10.0
    #: ``retry_after_ms`` told to clients when the server shuts down
    shutdown_retry_after_ms: int = 5_000
    #: sessions with no connection and no stream are forgotten after this long
    session_idle_timeout_s: float = 3_600.0
    #: ``gc.set_threshold(gen0, 50, 100)`` at start-up (GC pauses dominate tail latency at
    #: ~1k connections); 0 keeps Python's default
    gc_gen0_threshold: int = 100_000
    #: a full collection every this many seconds when a young collection ran since the last
    #: (closed connections' cycles outlive it: frames held by cancellations' tracebacks, each
    #: holding its connection's buffers); 0: only Python's own thresholds
    gc_full_interval_s: float = 10.0
    #: TLS: a PEM certificate (chain) and its private key; both set = serve HTTPS and WSS
    #: (hypercorn's ``certfile``/``keyfile``), both empty = plain HTTP (docs/deploy.md)
    certfile: str = ""
    keyfile: str = ""
    #: behind a reverse proxy: how many proxies' ``X-Forwarded-For`` / ``-Proto`` /
    #: ``-Host`` entries to believe (hypercorn's ProxyFixMiddleware, legacy mode); 0 = none
    #: (the client address is the TCP peer's). Set it only when the proxy is the one way in
    proxy_trusted_hops: int = 0


@dataclass(frozen=True, slots=True)
class StreamsConfig:
    #: a stream with no subscriber keeps generating this long, then is cancelled (0 = at once)
    grace_period_s: float = 30.0
    #: answers longer than this are cut with ``response_too_large``
    max_response_chars: int = 400_000
    #: a provider silent for longer than this between two events gives ``provider_timeout``
    provider_timeout_s: float = 60.0
    #: ... and before its first token (time to first token), this long
    provider_ttft_timeout_s: float = 60.0
    #: before the first token, retryable failures (connection, 429, 5xx, overloaded) are
    #: retried this many times, with exponential backoff and full jitter from this base
    provider_retries: int = 3
    provider_retry_base_ms: float = 500.0
    #: ... and never beyond this much time in all (then the error is reported)
    provider_retry_budget_s: float = 30.0
    #: when every subscriber is this many characters behind, the stream stops reading its provider
    backpressure_chars: int = 16_384
    #: ... and after being held back this long, it is cancelled (``paused_too_long``)
    paused_limit_s: float = 300.0
    #: streams waiting behind a running one in a session
    max_queued: int = 8
    #: a stream's channel from its provider task (items, each one provider event)
    provider_buffer: int = 16
    #: a request sends at most this many characters upstream (system, tools' schemas, the
    #: earlier turns kept and the prompt): earlier turns are left out, oldest first, to stay
    #: within it; a prompt and system longer than it are ``payload_too_large``
    max_prompt_chars: int = 100_000
    #: trace entries kept per stream: its first half and the latest rest; what falls out
    #: between is counted (a ``dropped`` entry)
    max_trace_entries: int = 256


@dataclass(frozen=True, slots=True)
class PacingConfig:
    #: pacing when ``start`` gives none: off, fixed (cps) or smooth (cps, rising with backlog)
    mode: PacingMode = "smooth"
    cps: float = 120.0
    #: smooth mode raises its rate so the display lags generation by at most this long
    max_lag_s: float = 1.5
    #: least time between two frames to one connection
    frame_interval_ms: float = 33.0
    #: frames per second the whole process aims for; above it frames get longer (more per
    #: frame). Under load a connection's frames merge anyway (its subscription takes new
    #: entries only once its writer has written the last frame); a budget that binds below
    #: that only delays frames and costs a timer per frame (2,000 did from 67 streams on)
    frame_budget_per_s: float = 20_000.0
    #: ``progress`` events while there is work, at most this often
    progress_interval_ms: float = 250.0
    min_cps: float = 1.0
    max_cps: float = 100_000.0


@dataclass(frozen=True, slots=True)
class RenderConfig:
    #: keep ``![alt](src)`` images in model output (off: remote images leak who reads)
    allow_images: bool = False
    #: ``POST /api/render`` takes documents up to this long (``payload_too_large`` beyond)
    max_render_chars: int = 1_000_000
    #: a one-shot render taking longer is stopped (``payload_too_large``)
    max_render_s: float = 10.0
    #: worker processes for client-controlled CPU work (one-shot renders), off the event loop
    offload_workers: int = 1
    #: such jobs in flight (running or waiting) before new ones get ``rate_limited``
    offload_max_jobs: int = 16
    #: a stream's chunker re-renders at most this many characters per character of the
    #: answer (amortized); past it, updates get coarser (docs/chunker.md, "Work budget")
    rerender_ratio: int = 6
    #: ... beyond this many re-rendered characters allowed up front
    rerender_allowance_chars: int = 20_000
    #: a stream whose open tail (what one render of it takes) reaches this many characters
    #: renders in a worker thread, so the event loop keeps serving the others (~2.5 us per
    #: character: 8,000 is ~20 ms on the loop at most); 0 = always on the loop
    offload_tail_chars: int = 8_000


@dataclass(frozen=True, slots=True)
class ResumeConfig:
    #: a finished stream's log stays in memory this long for exact replay (then snapshot only)
    window_s: float = 900.0
    #: finished logs kept in all, and the bytes they hold (estimated); oldest evicted first
    max_finished_logs: int = 1_000
    max_finished_bytes: int = 64_000_000


EngineKind = Literal["memory", "redis"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    #: where streams' logs live (docs/engines.md): ``memory`` (this process only) or ``redis``
    #: (replicated through Redis Streams, so other processes follow and resume them)
    kind: EngineKind = "memory"
    #: redis: the server (``redis://host:port/db``; ``rediss://`` for TLS)
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: redis: entries kept per stream in Redis (``XADD MAXLEN ~``): the replay window there
    replay_maxlen: int = 10_000
    #: redis: the prefix of every key this server writes
    key_prefix: str = "streamer:"
    #: redis: a stream's generation lease (s), renewed every third of it while the stream runs;
    #: a stream whose owner died ends on the other processes within twice this
    lease_ttl_s: float = 5.0
    #: redis: how long one command waits for Redis's answer (s); a Redis that stops
    #: answering (frozen, a dead host) is then down for the process, as a refused connection
    command_timeout_s: float = 2.0


@dataclass(frozen=True, slots=True)
class PersistenceConfig:
    #: keep sessions and messages (off: memory only, lost on restart)
    enabled: bool = True
    #: where: ``sqlite`` (this process's file), ``redis`` (``engine.redis_url``: every
    #: process reads it; needs ``engine.kind = "redis"``), ``auto`` (redis with that engine)
    store: Literal["auto", "sqlite", "redis"] = "auto"
    #: the SQLite file; empty = $XDG_DATA_HOME/streamer/streamer.db (~/.local/share/streamer)
    database_path: str = ""
    #: a running stream's partial answer is saved this often (never per token)
    checkpoint_interval_s: float = 5.0
    #: sessions untouched for this long are deleted with their messages (0 = keep forever)
    retention_days: float = 30.0


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    #: register the demo's example tools (``calculate``, ``current_time``)
    builtin: bool = True
    #: rounds of "model asks, tools answer" per answer; then the model's last text stands
    max_steps: int = 4


AuthMode = Literal["none", "api_key", "jwt"]


@dataclass(frozen=True, slots=True)
class AuthConfig:
    #: who may connect (docs/security.md): none (loopback binds only), api_key or jwt
    mode: AuthMode = "none"
    #: api_key: a TOML file of keys, stored hashed (``streamer auth new-key`` makes entries);
    #: re-read when it changes, so a revoked key stops working without a restart
    api_keys_file: str = ""
    #: jwt: accepted algorithms (HS256, RS256, ES256)
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    #: jwt HS256: the environment variable holding the shared secret (never the secret itself)
    jwt_secret_env: str = "STREAMER_JWT_SECRET"
    #: jwt RS256/ES256: a PEM public key file, or a JWKS file (keys picked by ``kid``)
    jwt_public_key_file: str = ""
    jwt_jwks_file: str = ""
    #: jwt: required ``aud`` and ``iss`` (empty: not checked)
    jwt_audience: str = ""
    jwt_issuer: str = ""
    #: jwt: clock skew allowed on ``exp`` and ``nbf``
    jwt_leeway_s: float = 30.0
    #: jwt: the claim that names the identity
    jwt_identity_claim: str = "sub"
    #: jwt: an optional claim holding per-identity policy (the keys of [policy])
    jwt_policy_claim: str = ""
    #: a WebSocket without credentials in its handshake must send ``auth`` within this long
    ws_auth_timeout_s: float = 5.0
    #: browsers' SSE and REST may carry the token in this cookie (then a CSRF header is needed)
    cookie_name: str = "streamer_token"
    #: the double-submit CSRF cookie; state-changing requests echo it in ``X-CSRF-Token``
    csrf_cookie_name: str = "streamer_csrf"


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    #: origins (``scheme://host[:port]``) allowed besides the server's own; CORS answers them
    allowed_origins: tuple[str, ...] = ()
    #: requests with no ``Origin`` header (terminal client, server-to-server) are allowed
    allow_missing_origin: bool = True
    #: ``Host`` names accepted (against DNS rebinding); ``*`` accepts any
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    #: one log line per request and WebSocket: client address, identity, status (never text)
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    #: providers a client may name (``echo`` only when listed)
    providers: tuple[str, ...] = ("local", "openai", "anthropic")
    #: models a client may name besides each provider's configured one: ``provider:model``,
    #: ``provider:*`` for any
    models: tuple[str, ...] = ()
    #: answer characters per identity per UTC day (0 = no budget)
    daily_chars: int = 0
    #: provider tokens (input + output) per identity per UTC day (0 = no budget)
    daily_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    #: sessions one identity may hold (0 = no limit)
    max_sessions_per_identity: int = 1_000
    #: open connections (WebSocket, SSE) of one identity, and from one client address
    max_connections_per_identity: int = 256
    max_connections_per_address: int = 256
    #: streams of one identity running or queued at once, over all its sessions
    max_streams_per_identity: int = 32
    #: streams one identity may start per minute (a moving window)
    streams_per_minute: int = 120
    #: a connection that follows no stream for this long is closed (0 = never)
    idle_connection_timeout_s: float = 900.0


@dataclass(frozen=True, slots=True)
class AISDKConfig:
    #: ``POST /api/chat`` (and its resume ``GET``): a client that closes the response before
    #: the end stops the answer (``stop()`` of the AI SDK aborts the fetch); off, the answer
    #: runs on for ``streams.grace_period_s`` and a resume ``GET`` can pick it up
    stop_on_disconnect: bool = True


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    #: ``GET /metrics`` (Prometheus text); who may read it: ``loopback`` (a loopback peer, no
    #: proxy headers), ``auth`` (credentials [auth] accepts) or ``open`` (docs/operations.md)
    enabled: bool = True
    access: Literal["loopback", "auth", "open"] = "loopback"


@dataclass(frozen=True, slots=True)
class LogConfig:
    #: records at this level and above; ``text`` or ``json`` lines (``--log-level``,
    #: ``--log-format`` win); ``content``: also each finished stream's prompt and answer
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    content: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    streams: StreamsConfig = field(default_factory=StreamsConfig)
    pacing: PacingConfig = field(default_factory=PacingConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    resume: ResumeConfig = field(default_factory=ResumeConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    aisdk: AISDKConfig = field(default_factory=AISDKConfig)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check or convert one value (from TOML, or a string from the environment) to ``hint``."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if hint is bool:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value) if isinstance(value, str | int) else _fail(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from exc
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value) if isinstance(value, str | int | float) else _fail(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from exc
    if hint == tuple[str, ...]:
        if isinstance(value, str):  # the environment: comma-separated
            return tuple(item.strip() for item in value.split(",") if item.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover


def _fail(value: Any) -> Any:
    raise ValueError(value)


def _server_checks(server: ServerConfig) -> list[tuple[bool, str]]:
    return [
        (0 < server.port < 65_536 or server.port == 0, "server.port"),
        (server.heartbeat_interval_s > 0, "server.heartbeat_interval_s must be > 0"),
        (server.send_timeout_s > 0, "server.send_timeout_s must be > 0"),
        (server.max_message_bytes >= 256, "server.max_message_bytes must be >= 256"),
        (1 <= server.max_json_depth <= 256, "server.max_json_depth must be 1-256"),
        (1 <= server.max_json_number_digits <= 4_000,
         "server.max_json_number_digits must be 1-4000"),
        (server.max_invalid_messages >= 1, "server.max_invalid_messages must be >= 1"),
        (server.invalid_messages_window_s >= 1,
         "server.invalid_messages_window_s must be >= 1"),
        (server.max_control_messages_per_s >= 1,
         "server.max_control_messages_per_s must be >= 1"),
        (server.control_messages_burst >= server.max_control_messages_per_s,
         "server.control_messages_burst must be >= server.max_control_messages_per_s"),
        (server.drain_timeout_s >= 0, "server.drain_timeout_s must be >= 0"),
        (bool(server.certfile) == bool(server.keyfile),
         "server.certfile and server.keyfile must be set together (or both left empty)"),
        (0 <= server.proxy_trusted_hops <= 8, "server.proxy_trusted_hops must be 0-8"),
    ]


def _provider_checks(providers: ProvidersConfig) -> list[tuple[bool, str]]:
    local = providers.local
    return [
        (local.n_threads >= 1, "providers.local.n_threads must be >= 1"),
        (local.token_buffer >= 1, "providers.local.token_buffer must be >= 1"),
        (local.repeat_penalty > 0, "providers.local.repeat_penalty must be > 0"),
        (0 < local.max_tokens < local.n_ctx,
         "providers.local.max_tokens must be > 0 and < providers.local.n_ctx"),
        (local.max_waiting >= 0, "providers.local.max_waiting must be >= 0"),
        (min(providers.echo.max_input_tokens, providers.openai.max_input_tokens,
             providers.anthropic.max_input_tokens) >= 0,
         "providers.*.max_input_tokens must be >= 0 (0 = no budget)"),
        (providers.echo.delta_chars >= 1, "providers.echo.delta_chars must be >= 1"),
        (providers.echo.interval_ms >= 0, "providers.echo.interval_ms must be >= 0"),
        (providers.openai.preset in ("openai", "perplexity", "ollama", "vllm", "llamacpp"),
         "providers.openai.preset must be openai, perplexity, ollama, vllm or llamacpp"),
        (providers.anthropic.thinking_budget_tokens == 0
         or providers.anthropic.thinking_budget_tokens >= 1024,
         "providers.anthropic.thinking_budget_tokens must be 0 (off) or >= 1024"),
    ]


def _validate(config: Config) -> None:
    checks: list[tuple[bool, str]] = [
        *_server_checks(config.server),
        (config.streams.grace_period_s >= 0, "streams.grace_period_s must be >= 0"),
        (config.streams.max_response_chars > 0, "streams.max_response_chars must be > 0"),
        (config.streams.provider_timeout_s > 0, "streams.provider_timeout_s must be > 0"),
        (config.streams.provider_ttft_timeout_s > 0,
         "streams.provider_ttft_timeout_s must be > 0"),
        (config.streams.provider_retries >= 0, "streams.provider_retries must be >= 0"),
        (config.streams.provider_retry_base_ms >= 0,
         "streams.provider_retry_base_ms must be >= 0"),
        (config.streams.provider_retry_budget_s >= 0,
         "streams.provider_retry_budget_s must be >= 0"),
        (config.streams.backpressure_chars > 0, "streams.backpressure_chars must be > 0"),
        (config.streams.provider_buffer >= 1, "streams.provider_buffer must be >= 1"),
        (config.streams.max_trace_entries >= 2, "streams.max_trace_entries must be >= 2"),
        (config.streams.max_queued >= 0, "streams.max_queued must be >= 0"),
        (config.resume.window_s >= 0 <= config.resume.max_finished_logs, "resume.* must be >= 0"),
        (config.persistence.checkpoint_interval_s > 0,
         "persistence.checkpoint_interval_s must be > 0"),
        (config.persistence.retention_days >= 0, "persistence.retention_days must be >= 0"),
        (config.persistence.store != "redis" or config.engine.kind == "redis",
         'persistence.store = "redis" needs engine.kind = "redis"'),
        (config.tools.max_steps >= 1, "tools.max_steps must be >= 1"),
        (min(config.limits.max_sessions_per_identity, config.limits.max_connections_per_identity,
             config.limits.max_connections_per_address, config.limits.max_streams_per_identity,
             config.limits.streams_per_minute) >= 0, "limits.* must be >= 0 (0 = no limit)"),
        (config.limits.idle_connection_timeout_s >= 0,
         "limits.idle_connection_timeout_s must be >= 0"),
        (config.render.max_render_chars >= 1, "render.max_render_chars must be >= 1"),
        (config.render.max_render_s > 0, "render.max_render_s must be > 0"),
        (config.render.offload_workers >= 1, "render.offload_workers must be >= 1"),
        (config.render.offload_max_jobs >= 1, "render.offload_max_jobs must be >= 1"),
        (config.render.rerender_ratio >= 1, "render.rerender_ratio must be >= 1"),
        (config.render.rerender_allowance_chars >= 0,
         "render.rerender_allowance_chars must be >= 0"),
        (config.render.offload_tail_chars >= 0, "render.offload_tail_chars must be >= 0"),
        (config.pacing.min_cps > 0, "pacing.min_cps must be > 0"),
        (config.pacing.min_cps <= config.pacing.cps <= config.pacing.max_cps,
         "pacing.cps must lie within [pacing.min_cps, pacing.max_cps]"),
        (config.pacing.max_lag_s > 0, "pacing.max_lag_s must be > 0"),
        (config.pacing.frame_interval_ms >= 0, "pacing.frame_interval_ms must be >= 0"),
        (config.pacing.frame_budget_per_s > 0, "pacing.frame_budget_per_s must be > 0"),
        *_provider_checks(config.providers),
        (config.streams.max_prompt_chars >= 1, "streams.max_prompt_chars must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from defaults, an optional TOML file and the environment.

    Args:
        path: a TOML file; ``None`` means ``$STREAMER_CONFIG`` if set, else defaults only.
        env: the environment to read ``STREAMER_*`` overrides from (default ``os.environ``).

    Returns:
        A frozen :class:`Config`.

    Raises:
        ConfigError: unknown key, wrong type, value out of range, unreadable file, or an
            unknown ``STREAMER_*`` variable (the message names the closest key);
            :mod:`streamer.config_load` has the rules.
    """
    from streamer.config_load import load
    return load(path, env).config


def replace(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that also takes dotted paths: ``replace(c, **{"pacing.cps": 5})``."""
    direct = {k: v for k, v in changes.items() if "." not in k}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if "." in key:
            head, rest = key.split(".", 1)
            nested.setdefault(head, {})[rest] = value
    for head, sub in nested.items():
        direct[head] = replace(getattr(config, head), **sub)
    return dataclasses.replace(config, **direct)
