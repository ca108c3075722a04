"""What an identity may spend: providers, models, ``max_tokens`` and daily budgets.

The server decides the cost of an answer, not the client (issue 14). :meth:`Policy.admit`
checks a ``start`` against ``[policy]`` (and the identity's overrides) before its stream is
created, and returns the :class:`Admission` the stream runs with:

- **provider**: ``start.provider`` or ``providers.default``; refused
  (:class:`~streamer.errors.Forbidden`) unless listed in ``policy.providers`` (``echo`` is off
  unless listed) and configured (a built-in provider, or a name the operator listed in the
  global ``policy.providers`` for a provider an embedding application registers).
- **model**: ``start.model`` may name the provider's configured model (what it would use
  anyway), or one ``policy.models`` allows (``"provider:model"``, ``"provider:*"``);
  anything else is refused.
- **max_tokens**: clamped to the provider's configured maximum
  (``providers.<name>.max_tokens``), and set to it when the client gave none. ``echo`` and
  embedder-registered providers have no configured maximum: their ``max_tokens`` is left as
  asked (``echo`` counts characters, costs nothing, and its answer is bounded by the prompt
  and ``streams.max_response_chars``) unless the identity's ``max_tokens`` override sets one.
- **daily budgets**: ``daily_chars`` (answer characters) and ``daily_tokens`` (provider usage,
  input + output; ``echo`` reports characters and they count as its tokens) per identity
  ``subject`` per UTC day; once one is spent, :class:`~streamer.errors.QuotaExceeded` with
  ``retry_after_ms`` = the time to the next UTC midnight. Budgets are checked when a stream is
  admitted and charged (:meth:`Policy.record`) when it ends: a running answer is never cut, so
  the last admitted answer may overshoot a budget.

Per-identity overrides (``Identity.policy``: an API key entry's, a JWT claim's, a hook's) have
the keys of ``[policy]`` plus ``max_tokens`` (the identity's ceiling for every provider, in
place of the provider's configured maximum); each given key replaces the global value
(:func:`parse_overrides` checks their shapes).

The counters live in memory, per process (a restart forgets them; several processes each
count their own; issue 17 moves them to Redis). Sans-IO: the clock is injected, nothing here
blocks or touches the network.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from streamer.config import Config, ConfigError
from streamer.errors import Forbidden, QuotaExceeded
from streamer.security.identity import Identity
from streamer.wire.controls import Start

logger = logging.getLogger("streamer.security")

#: the providers streamer builds from ``[providers.*]`` (``streamer.providers.NAMES``)
BUILTIN_PROVIDERS = ("local", "echo", "openai", "anthropic")
#: the keys an identity's policy mapping may have
OVERRIDE_KEYS = ("providers", "models", "daily_chars", "daily_tokens", "max_tokens")
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class PolicyOverrides:
    """One identity's policy; ``None`` fields keep the global ``[policy]`` value.

    Attributes:
        providers: providers it may name (replaces ``policy.providers``).
        models: extra models it may name, ``"provider:model"`` or ``"provider:*"``.
        daily_chars: answer characters per UTC day (0 = no budget).
        daily_tokens: provider tokens (input + output) per UTC day (0 = no budget).
        max_tokens: its ``max_tokens`` ceiling for every provider (>= 1), in place of
            ``providers.<name>.max_tokens``.
    """

    providers: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    daily_chars: int | None = None
    daily_tokens: int | None = None
    max_tokens: int | None = None


def check_model_rule(rule: str) -> None:
    """Check one ``policy.models`` entry: ``"provider:model"`` or ``"provider:*"`` (split at
    the first colon, so ``"openai:qwen3:4b"`` names the model ``qwen3:4b``).

    Raises:
        ValueError: another shape.
    """
    provider, colon, model = rule.partition(":")
    if not (colon and provider.strip() and model.strip()):
        raise ValueError(f"model rule {rule!r} is not 'provider:model' or 'provider:*'")


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) \
            or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"policy {key!r} must be a list of non-empty strings")
    return tuple(value)


def _count(value: Any, key: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"policy {key!r} must be an integer >= {least}")
    return value


def parse_overrides(mapping: Mapping[str, Any]) -> PolicyOverrides:
    """An identity's policy mapping (an API key entry's table, a JWT claim's object), checked.

    Args:
        mapping: any of ``providers`` and ``models`` (lists of strings), ``daily_chars`` and
            ``daily_tokens`` (integers >= 0), ``max_tokens`` (an integer >= 1).

    Raises:
        ValueError: not a mapping, an unknown key, or a value of the wrong shape (the message
            names the key).
    """
    if not isinstance(mapping, Mapping):
        raise ValueError("policy must be a mapping of " + ", ".join(OVERRIDE_KEYS))
    unknown = sorted(str(k) for k in mapping if k not in OVERRIDE_KEYS)
    if unknown:
        raise ValueError(f"unknown policy key(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in ("providers", "models"):
        if key in mapping:
            values[key] = _strings(mapping[key], key)
    for rule in values.get("models", ()):
        check_model_rule(rule)
    for key in ("daily_chars", "daily_tokens"):
        if key in mapping:
            values[key] = _count(mapping[key], key, 0)
    if "max_tokens" in mapping:
        values["max_tokens"] = _count(mapping["max_tokens"], "max_tokens", 1)
    return PolicyOverrides(**values)


@dataclass(frozen=True, slots=True)
class Admission:
    """A ``start`` the policy let through.

    Attributes:
        start: the ``start`` to run: ``provider`` resolved, ``max_tokens`` the effective one.
        provider: the provider it runs on.
        max_tokens: its effective limit (``None``: no limit but the provider's own, e.g.
            ``echo`` without one asked).
        max_tokens_requested: what the client asked when it was clamped, else ``None``.
    """

    start: Start
    provider: str
    max_tokens: int | None
    max_tokens_requested: int | None = None

    @property
    def clamped(self) -> bool:
        """``max_tokens`` was lowered from what the client asked."""
        return self.max_tokens_requested is not None


def tokens_of(usage: Mapping[str, Any] | None) -> int:
    """Tokens a stream's usage report counts (``input_tokens + output_tokens``; 0 without
    one)."""
    if not usage:
        return 0
    return int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)


class Policy:
    """The ``[policy]`` of the process, and what each identity spent today.

    Args:
        config: the server's configuration (``[policy]``, ``[providers]``).
        clock: seconds since the Unix epoch, UTC (default :func:`time.time`; tests inject one).

    Raises:
        ConfigError: a ``policy.models`` entry of the wrong shape.
    """

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        #: budgets refused, by setting (``policy.daily_chars``, ``…_tokens``; ``/metrics``)
        self.hits: Counter[str] = Counter()
        for rule in config.policy.models:
            try:
                check_model_rule(rule)
            except ValueError as exc:
                raise ConfigError(f"policy.models: {exc}") from exc
        #: the providers this server can run: built in, or listed by the operator
        self.configured = frozenset((*BUILTIN_PROVIDERS, *config.policy.providers))
        if config.providers.default not in config.policy.providers:
            logger.warning("providers.default %r is not in policy.providers: a start must "
                           "name an allowed provider", config.providers.default)
        self._day = -1
        #: subject -> [answer characters, tokens] spent today
        self._spent: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ admission

    def admit(self, identity: Identity, start: Start) -> Admission:
        """Check ``start`` for ``identity``; the admission its stream runs with.

        Raises:
            Forbidden: the provider is not allowed or not configured; the model is not
                allowed; the identity's policy mapping is malformed.
            QuotaExceeded: a daily budget of the identity is spent (``retry_after_ms``: to
                the next UTC midnight).
        """
        overrides = self._overrides(identity)
        provider = start.provider or self.config.providers.default
        allowed = self.config.policy.providers if overrides.providers is None \
            else overrides.providers
        if provider not in allowed:
            raise Forbidden(f"provider {provider!r} is not allowed")
        if provider not in self.configured:
            raise Forbidden(f"provider {provider!r} is not configured")
        if start.model is not None and not self._model_allowed(provider, start.model, overrides):
            raise Forbidden(f"model {start.model!r} is not allowed for provider {provider!r}")
        self._check_budgets(identity, overrides)
        max_tokens, requested = self._max_tokens(provider, start.max_tokens, overrides)
        return Admission(replace(start, provider=provider, max_tokens=max_tokens), provider,
                         max_tokens, requested)

    def _overrides(self, identity: Identity) -> PolicyOverrides:
        try:
            return parse_overrides(identity.policy)
        except ValueError as exc:
            logger.warning("identity %r has a malformed policy: %s", identity.subject, exc)
            raise Forbidden("this identity's policy is malformed") from exc

    def configured_model(self, provider: str) -> str | None:
        """The model ``provider`` uses when a ``start`` names none (``None``: unknown, an
        embedder-registered provider)."""
        from streamer.providers import configured_model  # imports no SDK until needed
        return configured_model(self.config.providers, provider)

    def _model_allowed(self, provider: str, model: str, overrides: PolicyOverrides) -> bool:
        rules = self.config.policy.models if overrides.models is None else overrides.models
        return model == self.configured_model(provider) \
            or f"{provider}:{model}" in rules or f"{provider}:*" in rules

    def _max_tokens(self, provider: str, asked: int | None, overrides: PolicyOverrides
                    ) -> tuple[int | None, int | None]:
        """``(effective, requested-if-clamped)``."""
        section = self.config.providers.section(provider)  # built in or a named instance
        configured: int | None = getattr(section, "max_tokens", None)
        ceiling = configured if overrides.max_tokens is None else overrides.max_tokens
        if asked is None:  # the provider's own default, within the ceiling
            if configured is None or ceiling is None:
                return ceiling, None
            return min(configured, ceiling), None
        if ceiling is not None and asked > ceiling:
            return ceiling, asked
        return asked, None

    # ------------------------------------------------------------------ budgets

    def _today(self) -> tuple[float, int]:
        """``(now, UTC day number)``; a new day forgets yesterday's counters."""
        now = self.clock()
        day = math.floor(now / DAY_S)
        if day != self._day:
            self._day = day
            self._spent.clear()
        return now, day

    def _check_budgets(self, identity: Identity, overrides: PolicyOverrides) -> None:
        now, day = self._today()
        chars, tokens = self._spent.get(identity.subject, (0, 0))
        policy = self.config.policy
        for what, spent, limit in (
                ("character", chars, policy.daily_chars if overrides.daily_chars is None
                 else overrides.daily_chars),
                ("token", tokens, policy.daily_tokens if overrides.daily_tokens is None
                 else overrides.daily_tokens)):
            if limit and spent >= limit:
                self.hits[f"policy.daily_{what}s"] += 1
                retry_after_ms = max(1, math.ceil(((day + 1) * DAY_S - now) * 1000))
                raise QuotaExceeded(f"the daily {what} budget ({limit}) is spent; it renews "
                                    "at midnight UTC", retry_after_ms=retry_after_ms)

    def record(self, identity: Identity, chars: int, tokens: int) -> None:
        """Charge a finished (or cancelled, or failed) answer to ``identity``'s day.

        Args:
            chars: the answer's characters (its markdown).
            tokens: the provider's usage, input + output (:func:`tokens_of`).
        """
        self._today()
        spent = self._spent.setdefault(identity.subject, [0, 0])
        spent[0] += chars
        spent[1] += tokens

    def spent(self, identity: Identity) -> tuple[int, int]:
        """``(characters, tokens)`` ``identity`` spent today."""
        self._today()
        chars, tokens = self._spent.get(identity.subject, (0, 0))
        return chars, tokens
