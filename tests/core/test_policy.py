"""The server's policy (issue 14): providers, models, ``max_tokens`` and daily budgets, pure
(no Trio, an injected clock)."""

from __future__ import annotations

from typing import Any

import pytest

from streamer.config import Config, ConfigError, replace
from streamer.conversation import Message
from streamer.errors import Forbidden, QuotaExceeded
from streamer.security.identity import ANONYMOUS, Identity
from streamer.security.policy import (
    Policy,
    PolicyOverrides,
    parse_overrides,
    tokens_of,
)
from streamer.wire.controls import Start

#: 2025-03-01 20:30:00 UTC: 3.5 hours (12,600,000 ms) before the next UTC midnight
NOW = 1_740_861_000.0
TO_MIDNIGHT_MS = 12_600_000
ALL = ("local", "echo", "openai", "anthropic")


def config(**changes: Any) -> Config:
    result: Config = replace(Config(), **changes)
    return result


def start(provider: str | None = None, model: str | None = None,
          max_tokens: int | None = None) -> Start:
    return Start((Message("user", "hi"),), provider=provider, model=model, max_tokens=max_tokens)


def user(subject: str = "alice", **policy: Any) -> Identity:
    return Identity(subject, "api_key", policy)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ providers


def test_echo_is_refused_unless_listed() -> None:
    with pytest.raises(Forbidden, match="provider 'echo' is not allowed"):
        Policy(Config()).admit(ANONYMOUS, start("echo"))
    admitted = Policy(config(**{"policy.providers": ALL})).admit(ANONYMOUS, start("echo"))
    assert admitted.provider == "echo" and admitted.start.provider == "echo"


def test_an_unlisted_or_unknown_provider_is_refused() -> None:
    policy = Policy(config(**{"policy.providers": ("local",)}))
    for name in ("anthropic", "nonesuch"):
        with pytest.raises(Forbidden, match=f"provider '{name}' is not allowed") as info:
            policy.admit(ANONYMOUS, start(name))
        assert info.value.code == "forbidden"


def test_an_identity_cannot_enable_a_provider_nobody_configured() -> None:
    policy = Policy(config(**{"policy.providers": ("local", "custom")}))
    with pytest.raises(Forbidden, match="provider 'nonesuch' is not configured"):
        policy.admit(user(providers=["nonesuch"]), start("nonesuch"))
    # an embedder's provider the operator listed is configured (registered at run time)
    assert policy.admit(user(providers=["custom"]), start("custom")).max_tokens is None


def test_no_provider_means_the_default_with_its_configured_max_tokens() -> None:
    admitted = Policy(Config()).admit(ANONYMOUS, start())
    assert admitted.provider == "local" == admitted.start.provider
    assert admitted.max_tokens == 512 == admitted.start.max_tokens
    assert not admitted.clamped and admitted.max_tokens_requested is None


# ------------------------------------------------------------------ models


def test_a_model_other_than_the_configured_one_is_refused() -> None:
    policy = Policy(Config())
    with pytest.raises(Forbidden, match="model 'claude-opus-4-1' is not allowed for "
                                        "provider 'anthropic'"):
        policy.admit(ANONYMOUS, start("anthropic", "claude-opus-4-1"))
    assert policy.admit(ANONYMOUS, start("anthropic", "claude-sonnet-4-6")).provider \
        == "anthropic"
    with pytest.raises(Forbidden, match="model 'big' is not allowed for provider 'local'"):
        policy.admit(ANONYMOUS, start("local", "big"))


def test_provider_star_allows_any_model_of_that_provider_only() -> None:
    policy = Policy(config(**{"policy.models": ("anthropic:*",)}))
    assert policy.admit(ANONYMOUS, start("anthropic", "claude-opus-4-1")).start.model \
        == "claude-opus-4-1"
    with pytest.raises(Forbidden, match="model 'gpt-5'"):
        policy.admit(ANONYMOUS, start("openai", "gpt-5"))


def test_a_provider_model_rule_allows_that_model_only() -> None:
    policy = Policy(config(**{"policy.models": ("openai:qwen3:4b",)}))
    assert policy.admit(ANONYMOUS, start("openai", "qwen3:4b")).provider == "openai"
    with pytest.raises(Forbidden):
        policy.admit(ANONYMOUS, start("openai", "qwen3:8b"))


def test_the_configured_model_is_the_one_the_provider_would_use() -> None:
    policy = Policy(config(**{"providers.local.model_path": "/models/tiny-chat.gguf",
                              "providers.openai.preset": "perplexity"}))
    assert policy.configured_model("local") == "tiny-chat"
    assert policy.configured_model("openai") == "sonar"  # the preset's
    assert policy.configured_model("echo") == "echo"
    assert policy.configured_model("custom") is None
    policy.admit(ANONYMOUS, start("openai", "sonar"))
    with pytest.raises(Forbidden):
        policy.admit(ANONYMOUS, start("openai", "gpt-4o-mini"))


# ------------------------------------------------------------------ max_tokens


def test_max_tokens_above_the_maximum_is_clamped_and_says_what_was_asked() -> None:
    admitted = Policy(Config()).admit(ANONYMOUS, start("anthropic", max_tokens=1_000_000))
    assert admitted.max_tokens == 1_024 == admitted.start.max_tokens
    assert admitted.clamped and admitted.max_tokens_requested == 1_000_000


def test_max_tokens_within_the_maximum_is_kept() -> None:
    admitted = Policy(Config()).admit(ANONYMOUS, start("local", max_tokens=32))
    assert admitted.max_tokens == 32 and not admitted.clamped


def test_echo_has_no_maximum_of_its_own() -> None:
    policy = Policy(config(**{"policy.providers": ALL}))
    assert policy.admit(ANONYMOUS, start("echo")).max_tokens is None
    admitted = policy.admit(ANONYMOUS, start("echo", max_tokens=1_000_000))
    assert admitted.max_tokens == 1_000_000 and not admitted.clamped


# ------------------------------------------------------------------ per-identity overrides


def test_an_identity_max_tokens_replaces_the_provider_maximum() -> None:
    policy = Policy(config(**{"policy.providers": ALL}))
    generous = user(max_tokens=4_096)
    assert policy.admit(generous, start("anthropic", max_tokens=3_000)).max_tokens == 3_000
    assert policy.admit(generous, start("anthropic")).max_tokens == 1_024  # the default
    stingy = user(max_tokens=100)
    assert policy.admit(stingy, start("anthropic")).max_tokens == 100
    assert policy.admit(stingy, start("echo")).max_tokens == 100
    clamped = policy.admit(stingy, start("echo", max_tokens=500))
    assert (clamped.max_tokens, clamped.max_tokens_requested) == (100, 500)


def test_an_identity_providers_and_models_replace_the_global_lists() -> None:
    policy = Policy(Config())
    tester = user(providers=["echo"], models=["echo:*"])
    assert policy.admit(tester, start("echo", "anything")).provider == "echo"
    with pytest.raises(Forbidden, match="provider 'local' is not allowed"):
        policy.admit(tester, start())
    assert policy.admit(ANONYMOUS, start()).provider == "local"  # others keep the global
    with pytest.raises(Forbidden):
        policy.admit(user(models=[]), start("anthropic", "claude-opus-4-1"))


def test_parse_overrides_reads_every_key() -> None:
    assert parse_overrides({"providers": ["echo"], "models": ("echo:*",), "daily_chars": 0,
                            "daily_tokens": 5, "max_tokens": 64}) == PolicyOverrides(
        ("echo",), ("echo:*",), 0, 5, 64)
    assert parse_overrides({}) == PolicyOverrides()


@pytest.mark.parametrize(("mapping", "key"), [
    ({"budget": 5}, "budget"),
    ({"providers": "echo"}, "providers"),
    ({"providers": ["echo", 3]}, "providers"),
    ({"models": ["echo"]}, "'echo'"),
    ({"models": ["*:"]}, "'\\*:'"),
    ({"daily_chars": -1}, "daily_chars"),
    ({"daily_tokens": True}, "daily_tokens"),
    ({"daily_tokens": 1.5}, "daily_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    (["providers"], "mapping"),
])
def test_parse_overrides_refuses_bad_shapes(mapping: Any, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        parse_overrides(mapping)


def test_a_malformed_identity_policy_is_forbidden_not_a_crash() -> None:
    with pytest.raises(Forbidden, match="policy is malformed"):
        Policy(Config()).admit(user(max_tokens="lots"), start())


def test_a_bad_model_rule_in_the_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="policy.models"):
        Policy(config(**{"policy.models": ("anthropic",)}))


# ------------------------------------------------------------------ daily budgets


def test_a_spent_character_budget_refuses_until_the_next_utc_day() -> None:
    clock = Clock()
    policy = Policy(config(**{"policy.daily_chars": 100}), clock=clock)
    alice, bob = user("alice"), user("bob")
    policy.admit(alice, start())
    policy.record(alice, 60, 0)
    policy.admit(alice, start())  # 60 < 100: still allowed
    policy.record(alice, 60, 0)  # the answer ran over; it is not cut
    with pytest.raises(QuotaExceeded, match="character budget") as info:
        policy.admit(alice, start())
    assert info.value.code == "quota_exceeded" and info.value.retryable
    assert info.value.retry_after_ms == TO_MIDNIGHT_MS
    policy.admit(bob, start())  # per subject
    clock.now += 3_600
    with pytest.raises(QuotaExceeded) as info:
        policy.admit(alice, start())
    assert info.value.retry_after_ms == TO_MIDNIGHT_MS - 3_600_000
    clock.now = NOW + TO_MIDNIGHT_MS / 1000  # midnight UTC
    policy.admit(alice, start())
    assert policy.spent(alice) == (0, 0)


def test_a_spent_token_budget_counts_input_and_output() -> None:
    policy = Policy(config(**{"policy.daily_tokens": 1_000}), clock=Clock())
    usage = {"input_tokens": 400, "output_tokens": 600, "unit": "tokens"}
    policy.record(ANONYMOUS, 10, tokens_of(usage))
    assert policy.spent(ANONYMOUS) == (10, 1_000)
    with pytest.raises(QuotaExceeded, match="token budget") as info:
        policy.admit(ANONYMOUS, start())
    assert info.value.retry_after_ms == TO_MIDNIGHT_MS


def test_an_identity_budget_replaces_the_global_one() -> None:
    policy = Policy(config(**{"policy.daily_chars": 10}), clock=Clock())
    unlimited, tight = user("u", daily_chars=0), user("t", daily_tokens=5)
    policy.record(unlimited, 1_000, 0)
    policy.admit(unlimited, start())
    policy.record(tight, 0, 5)
    with pytest.raises(QuotaExceeded, match="token budget"):
        policy.admit(tight, start())


def test_no_budget_by_default() -> None:
    policy = Policy(Config(), clock=Clock())
    policy.record(ANONYMOUS, 10**9, 10**9)
    policy.admit(ANONYMOUS, start())


def test_tokens_of_a_usage_report() -> None:
    assert tokens_of(None) == 0 == tokens_of({})
    assert tokens_of({"input_tokens": 3, "output_tokens": 4, "unit": "chars"}) == 7
