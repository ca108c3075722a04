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


# -- every numeric setting has a range, and `streamer config check` enforces it (issue 18) --

def _numeric_settings() -> list[tuple[str, type, type]]:
    """``(dotted key, settings class, int | float)`` for every numeric setting."""
    import dataclasses
    import typing

    out: list[tuple[str, type, type]] = []

    def walk(cls: type, path: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                walk(hint, (*path, f.name))
            elif hint in (int, float):
                out.append((".".join((*path, f.name)), cls, hint))
    walk(Config, ())
    return out


NUMERIC = _numeric_settings()


def _bad_values() -> list[tuple[str, type, object]]:
    """For each numeric setting: a value just under its range, and one just over it when the
    range has a top (in the setting's own type)."""
    from streamer.config_load import RANGES

    cases = []
    for key, cls, kind in NUMERIC:
        rule = RANGES[cls][key.rsplit(".", 1)[1]]
        below = rule.low if rule.open_low else rule.low - (1 if kind is int else 0.5)
        if rule.low != float("-inf"):
            cases.append((key, kind, kind(below)))
        if rule.high != float("inf"):
            cases.append((key, kind, kind(rule.high + 1)))
    return cases


def test_every_numeric_setting_has_a_range() -> None:
    from streamer.config_load import RANGES

    assert len(NUMERIC) > 70
    missing = [key for key, cls, _ in NUMERIC if key.rsplit(".", 1)[1] not in RANGES.get(cls, {})]
    assert not missing, f"no range rule for {missing}"
    assert all(rule.low != float("-inf") for rules in RANGES.values() for rule in rules.values())


def _toml(key: str, value: object) -> str:
    section, name = key.rsplit(".", 1)
    return f"[{section}]\n{name} = {value!r}\n"


@pytest.mark.parametrize(("key", "kind", "value"), _bad_values(),
                         ids=[f"{k}={v}" for k, _, v in _bad_values()])
def test_config_check_refuses_each_value_out_of_range(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        key: str, kind: type, value: object) -> None:
    from streamer.cli import main

    for name in [n for n in __import__("os").environ if n.startswith("STREAMER_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "c.toml"
    path.write_text(_toml(key, value))
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamer: configuration error: ") and key in err, err
    # the same file with the default value passes: the refusal is the value's
    path.write_text(_toml(key, _default(key)))
    assert main(["config", "check", "--config", str(path)]) == 0, capsys.readouterr()


def _default(key: str) -> object:
    value: object = load_config(env={})
    for part in key.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("text", ["[pacing]\nprogress_interval_ms = -5\n",
                                  "[pacing]\ncps = nan\n", "[streams]\ngrace_period_s = inf\n"])
def test_the_issues_examples_and_non_finite_numbers_are_refused(tmp_path: Path,
                                                               text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    key = text.split("\n")[0].strip("[]") + "." + text.split("\n")[1].split(" ")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path, env={})


# -- the environment: an unknown STREAMER_* variable names the closest key --------------------

@pytest.mark.parametrize(("variable", "closest"), [
    ("STREAMER_SERVER_PROT", "STREAMER_SERVER_PORT (server.port)"),
    ("STREAMER_PACING_CSP", "STREAMER_PACING_CPS (pacing.cps)"),
    ("STREAMER_LIMITS_STREAM_PER_MINUTE",
     "STREAMER_LIMITS_STREAMS_PER_MINUTE (limits.streams_per_minute)"),
    ("STREAMER_PROVIDER_DEFAULT", "STREAMER_PROVIDERS_DEFAULT (providers.default)"),
])
def test_an_unknown_variable_names_the_closest_key(variable: str, closest: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={variable: "1"})
    assert str(info.value) == f"unknown environment variable {variable}; did you mean {closest}?"


def test_a_variable_like_no_setting_says_where_the_settings_are() -> None:
    with pytest.raises(ConfigError, match="STREAMER_XYZZY; the settings are listed in"):
        load_config(env={"STREAMER_XYZZY": "1"})


def test_variables_the_project_reads_are_not_settings_but_are_known() -> None:
    load_config(env={"STREAMER_TOKEN": "t", "STREAMER_CONFIG": "", "STREAMER_JWT_SECRET": "s",
                     "STREAMER_FAULT_SEED": "1", "STREAMER_LIMITS_STREAMS_PER_MINUTE": "0",
                     "STREAMER_POLICY_PROVIDERS": "echo"})
    # a variable an *_env setting names is the key's holder, not a typo
    config = load_config(env={"STREAMER_PROVIDERS_OPENAI_API_KEY_ENV": "STREAMER_TEST_KEY",
                              "STREAMER_TEST_KEY": "sk-test"})
    assert config.providers.openai.api_key_env == "STREAMER_TEST_KEY"
    with pytest.raises(ConfigError, match="STREAMER_TEST_KEY"):
        load_config(env={"STREAMER_TEST_KEY": "sk-test"})


def test_every_variable_the_docs_and_scripts_name_is_accepted(tmp_path: Path) -> None:
    import re

    names: set[str] = set()
    for pattern in ("README.md", "Makefile", "docs/*.md", "config/*.toml", "scripts/*",
                    "examples/*.py", "examples/*.toml"):
        for path in ROOT.glob(pattern):
            if path.is_file():
                names |= set(re.findall(r"\bSTREAMER_[A-Z][A-Z0-9_]*[A-Z0-9]\b",
                                        path.read_text(errors="replace")))
    # a pattern, a test's own key variable, the typo the docs show being refused
    names -= {"STREAMER_SECTION", "STREAMER_TEST_KEY", "STREAMER_SERVER_PROT"}
    assert "STREAMER_POLICY_PROVIDERS" in names
    path = tmp_path / "c.toml"  # docs/configuration.md's named provider, overridden
    path.write_text('[providers.perplexity]\ntype = "openai_compat"\n')
    for name in sorted(names):
        try:
            load_config(path, env={name: "0" if "PORT" in name else "echo"})
        except ConfigError as exc:
            assert not str(exc).startswith("unknown environment variable"), exc


# -- named provider instances -----------------------------------------------------------------

NAMED = """
[policy]
providers = ["openai", "perplexity", "ollama"]
[providers]
default = "perplexity"
[providers.perplexity]
type = "openai_compat"
preset = "perplexity"
max_tokens = 512
[providers.ollama]
type = "openai_compat"
preset = "ollama"
model = "qwen3:4b"
"""


def test_named_instances_of_one_type_sit_beside_the_builtin(tmp_path: Path) -> None:
    from streamer.config import OpenAIProviderConfig

    path = tmp_path / "c.toml"
    path.write_text(NAMED)
    config = load_config(path, env={"STREAMER_PROVIDERS_OLLAMA_BASE_URL":
                                    "http://127.0.0.1:9/v1"})
    named = {n.name: n for n in config.providers.named}
    assert set(named) == {"perplexity", "ollama"}
    assert named["perplexity"].type == "openai_compat"
    assert named["perplexity"].settings == OpenAIProviderConfig(preset="perplexity",
                                                                max_tokens=512)
    assert named["ollama"].settings.base_url == "http://127.0.0.1:9/v1"
    assert config.providers.section("ollama").model == "qwen3:4b"
    assert config.providers.section("openai") == config.providers.openai
    assert config.providers.section("nobody") is None


@pytest.mark.parametrize(("extra", "message"), [
    ('[providers.mistral]\ntype = "openai_compatible"\n', "providers.mistral.type"),
    ('[providers.perplexity2]\ntype = "openai_compat"\nmax_tokens = 0\n',
     r"providers\.perplexity2\.max_tokens must be >= 1"),
    ('[providers.bad]\ntype = "openai_compat"\npreset = "azure"\n', r"providers\.bad\.preset"),
    ('[providers.x]\ntype = "openai_compat"\nmodle = "m"\n', r"modle \(did you mean model\?\)"),
    ('[providers.Big-Name]\ntype = "echo"\n', "a provider's name"),
    ('[providers.opneai]\nmodel = "m"\n', r"opneai \(did you mean openai\?\)"),
])
def test_named_instances_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(NAMED + extra)
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_the_default_must_be_a_provider_someone_offers(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(NAMED.replace('default = "perplexity"', 'default = "perplexty"'))
    with pytest.raises(ConfigError, match=r"providers.default: .*did you mean perplexity\?"):
        load_config(path, env={})


# -- streamer config show ---------------------------------------------------------------------

def test_config_show_says_where_each_value_came_from(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from streamer.cli import main

    for name in [n for n in __import__("os").environ if n.startswith("STREAMER_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "c.toml"
    path.write_text(NAMED)
    monkeypatch.setenv("STREAMER_PACING_CPS", "80")
    monkeypatch.setenv("STREAMER_JWT_SECRET", "never-shown-" * 4)
    assert main(["config", "show", "--config", str(path), "--port", "9001"]) == 0
    shown: dict[tuple[str, str], str] = {}
    section = ""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line:
            shown[section, line.split(" = ")[0]] = line
    assert shown["server", "port"].startswith("port = 9001 ")
    assert shown["server", "port"].endswith("# flag --port")
    assert shown["pacing", "cps"].startswith("cps = 80.0 ")
    assert shown["pacing", "cps"].endswith("# env STREAMER_PACING_CPS")
    assert shown["server", "host"].endswith("# default")
    assert shown["providers.perplexity", "type"].endswith(f"# file {path}")
    assert shown["providers.perplexity", "max_tokens"].startswith("max_tokens = 512 ")
    assert shown["providers.perplexity", "temperature"].endswith("# default")
    assert "STREAMER_JWT_SECRET is set" in shown["auth", "jwt_secret_env"]
    assert "never-shown" not in "".join(shown.values())


def test_config_show_masks_what_looks_like_a_secret() -> None:
    from streamer.config_cli import _render

    assert _render("api_key", "sk-live-123") == '"***"'
    assert _render("client_secret", "x") == '"***"'
    assert _render("api_key_env", "OPENAI_API_KEY") == '"OPENAI_API_KEY"'
    assert _render("cookie_name", "streamer_token") == '"streamer_token"'


def test_a_plugin_instance_takes_its_table_and_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamer.config_load as config_load

    path = tmp_path / "c.toml"
    path.write_text('[providers.loud]\ntype = "shout"\nsuffix = "!"\ndelta_chars = 3\n'
                    'fast = false\nvoices = ["a"]\napi_key = "sk-secret"\n')
    with pytest.raises(ConfigError, match="'shout' is neither built in nor an installed"):
        load_config(path, env={})
    monkeypatch.setattr(config_load, "plugin_names", lambda: ["shout"])
    loaded = config_load.load(path, env={"STREAMER_PROVIDERS_LOUD_DELTA_CHARS": "5",
                                         "STREAMER_PROVIDERS_LOUD_FAST": "yes",
                                         "STREAMER_PROVIDERS_LOUD_VOICES": "b, c"})
    (loud,) = loaded.config.providers.named
    assert dict(loud.settings) == {"suffix": "!", "delta_chars": 5, "fast": True,
                                   "voices": ("b", "c"), "api_key": "sk-secret"}
    assert loaded.sources["providers.loud.delta_chars"] == "env STREAMER_PROVIDERS_LOUD_DELTA_CHARS"
    assert loaded.sources["providers.loud.suffix"] == f"file {path}"
    with pytest.raises(ConfigError, match="STREAMER_PROVIDERS_LOUD_DELTA_CHARS: expected an int"):
        config_load.load(path, env={"STREAMER_PROVIDERS_LOUD_DELTA_CHARS": "many"})
    with pytest.raises(ConfigError, match="did you mean STREAMER_PROVIDERS_LOUD_SUFFIX"):
        config_load.load(path, env={"STREAMER_PROVIDERS_LOUD_SUFIX": "?"})
    from streamer.config_cli import show
    shown = "\n".join(show(loaded))
    assert 'api_key = "***"' in shown and "sk-secret" not in shown
