"""Configuration: file, environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_config_file_repeats_every_default() -> None:
    assert load_config(ROOT / "config" / "streamer.toml", env={}) == Config()


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 9000\n[pacing]\ncps = 50\n")
    config = load_config(path, env={"STREAMER_SERVER_PORT": "9100",
                                    "STREAMER_PROVIDERS_LOCAL_N_THREADS": "2",
                                    "STREAMER_RENDER_ALLOW_IMAGES": "true"})
    assert config.server.port == 9100
    assert config.pacing.cps == 50.0
    assert config.providers.local.n_threads == 2
    assert config.render.allow_images is True


def test_streamer_config_env_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[streams]\ngrace_period_s = 0\n")
    assert load_config(env={"STREAMER_CONFIG": str(path)}).streams.grace_period_s == 0.0


@pytest.mark.parametrize(("text", "env", "message"), [
    ("[server]\nprot = 1\n", {}, "unknown setting"),
    ("[server]\nport = 'x'\n", {}, "expected an integer"),
    ("", {"STREAMER_SERVER_PORT": "eighty"}, "STREAMER_SERVER_PORT"),
    ("[pacing]\nmode = 'fast'\n", {}, "not one of"),
    ("[pacing]\ncps = 0\n", {}, "pacing.cps"),
    ("[providers]\ndefault = 'gpt'\n", {}, "providers.default"),
    ("[server\n", {}, "cannot read"),
])
def test_bad_values_are_refused_with_the_key(tmp_path: Path, text: str, env: dict[str, str],
                                             message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, env=env)


def test_api_keys_are_never_settings() -> None:
    text = (ROOT / "config" / "streamer.toml").read_text()
    assert "api_key =" not in text and "api_key_env" in text
