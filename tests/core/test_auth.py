"""Identity: where tokens come from, CSRF, API keys, JWT, and the start-up checks.

Synchronous (no Trio): the API-key store and the JWT verifier are checked through their
sync cores; the async authenticators (and the key file's reload on the loop) are in
``tests/shells/test_authenticators.py``. Keys are generated here with ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from streamer import cli
from streamer.config import AuthConfig, Config, ConfigError, ServerConfig
from streamer.errors import Unauthorized
from streamer.security.apikeys import KEY_PREFIX, ApiKeyStore, hash_key, key_entry, new_key
from streamer.security.identity import (
    ANONYMOUS,
    Identity,
    NoAuthenticator,
    RequestInfo,
    bearer_token,
    build_authenticator,
    csrf_ok,
    describe_auth,
    policy_overrides,
    validate_auth,
)
from streamer.security.jwt_auth import JwtAuthenticator

SECRET = "s" * 32
ENV = {"STREAMER_JWT_SECRET": SECRET}


def request(headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None,
            subprotocols: tuple[str, ...] = ()) -> RequestInfo:
    return RequestInfo(headers or {}, cookies or {}, "127.0.0.1", "/api/sessions",
                       "websocket" if subprotocols else "http", subprotocols)


# --- where the token comes from ---------------------------------------------------------

AUTH = AuthConfig()


@pytest.mark.parametrize(("info", "expected"), [
    (request({"authorization": "Bearer h"}, {"streamer_token": "c"}, ("bearer.s",)),
     ("h", "header")),
    (request({"authorization": "bEaReR   h2 "}), ("h2", "header")),
    (request({"authorization": "Basic dTpw"}, subprotocols=("streamer", "bearer.s")),
     ("s", "subprotocol")),
    (request({}, {"streamer_token": "c"}, ("streamer", "bearer.s")), ("s", "subprotocol")),
    (request({"authorization": "Bearer "}, {"streamer_token": "c"}, ("bearer.",)),
     ("c", "cookie")),
    (request({}, {"other": "c"}, ("streamer",)), (None, None)),
])
def test_bearer_token_order_header_subprotocol_cookie(info: RequestInfo,
                                                      expected: tuple[str, str]) -> None:
    assert bearer_token(info, AUTH) == expected


def test_bearer_token_cookie_name_is_configurable() -> None:
    info = request({}, {"streamer_token": "a", "mine": "b"})
    assert bearer_token(info, replace(AUTH, cookie_name="mine")) == ("b", "cookie")


@pytest.mark.parametrize(("header", "cookie", "ok"), [
    ("t0k", "t0k", True),
    ("t0k", "t0K", False),
    ("", "t0k", False),
    ("t0k", "", False),
    ("", "", False),
    ("é", "é", True),  # non-ASCII compares as bytes, no TypeError
])
def test_csrf_double_submit(header: str, cookie: str, ok: bool) -> None:
    headers = {"x-csrf-token": header} if header else {}
    cookies = {"streamer_csrf": cookie} if cookie else {}
    assert csrf_ok(request(headers, cookies), AUTH) is ok


# --- per-identity policy -----------------------------------------------------------------

def test_policy_overrides_shape() -> None:
    assert policy_overrides({"providers": ["local"], "models": ["openai:*"], "daily_chars": 5,
                             "daily_tokens": 0, "max_tokens": 64}) == {
        "providers": ("local",), "models": ("openai:*",), "daily_chars": 5,
        "daily_tokens": 0, "max_tokens": 64}


@pytest.mark.parametrize(("value", "named"), [
    ([], "policy"),
    ({"daily_char": 5}, "daily_char"),
    ({"providers": "local"}, "providers"),
    ({"max_tokens": True}, "max_tokens"),
    ({"daily_tokens": -1}, "daily_tokens"),
])
def test_policy_overrides_refuses(value: object, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        policy_overrides(value)


# --- API keys ------------------------------------------------------------------------------

def entry(key: str, subject: str = "alice", key_id: str = "alice-laptop",
          extra: str = "") -> str:
    return key_entry(key, subject, key_id) + extra + "\n"


def test_new_keys_are_prefixed_256_bit_and_hashed_with_sha256() -> None:
    key = new_key()
    assert re.fullmatch(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{43}}", key)
    assert new_key() != key
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_api_key_valid_unknown_revoked_missing(tmp_path: Path) -> None:
    alice, bob, carol = new_key(), new_key(), new_key()
    path = tmp_path / "keys.toml"
    path.write_text(entry(alice, extra='[keys.policy]\nproviders = ["local"]\nmax_tokens = 9')
                    + entry(bob, "bob", "bob-ci", "revoked = true"))
    store = ApiKeyStore(path)
    assert store.lookup(alice) == Identity("alice", "api_key",
                                           {"providers": ("local",), "max_tokens": 9},
                                           "alice-laptop")
    for token, message in ((carol, "unknown API key"), (bob, "revoked API key"),
                           (None, "missing credentials"), ("", "missing credentials"),
                           (alice[:-1], "unknown API key")):
        with pytest.raises(Unauthorized) as info:
            store.lookup(token)
        assert info.value.message == message


@pytest.mark.parametrize(("text", "message"), [
    ("[[keys]]\nid = 'a'\nsubject = 'alice'\n", "keys[0] ('a'): sha256 must be a non-empty"),
    ("[[keys]]\nid = 'a'\nsubject = 'alice'\nsha256 = 'abc'\n",
     "keys[0] ('a'): sha256 must be 64 hex digits"),
    ("[[keys]]\nid = 'a'\nsubject = 'alice'\nsha256 = '" + "0" * 64 + "'\nrevoke = true\n",
     "keys[0] ('a'): unknown field(s) revoke"),
    ("[[keys]]\nid = 'a'\nsubject = 'alice'\nsha256 = '" + "0" * 64 + "'\nrevoked = 'yes'\n",
     "keys[0] ('a'): revoked must be true or false"),
    ("[[keys]]\nid = 'a'\nsubject = 'anonymous'\nsha256 = '" + "0" * 64 + "'\n",
     "keys[0] ('a'): subject 'anonymous' is reserved"),
    ("[[keys]]\nid = 'a'\nsubject = 'alice'\nsha256 = '" + "0" * 64 + "'\n"
     "[keys.policy]\ndaily_char = 1\n", "keys[0] ('a'): unknown policy key"),
    ("[[keys]]\nid = 'a'\nsubject = 'x'\nsha256 = '" + "0" * 64 + "'\n"
     "[[keys]]\nid = 'a'\nsubject = 'y'\nsha256 = '" + "1" * 64 + "'\n",
     "keys[1]: duplicate id 'a'"),
    ("[[keys]]\nid = 'a'\nsubject = 'x'\nsha256 = '" + "0" * 64 + "'\n"
     "[[keys]]\nid = 'b'\nsubject = 'y'\nsha256 = '" + "0" * 64 + "'\n",
     "keys[1] ('b'): the same sha256 as 'a'"),
    ("keys = 'x'\n", "keys must be an array of tables"),
    ("[key]\nid = 'a'\n", "unknown top-level key(s) key"),
    ("[[keys]\n", "not valid TOML"),
])
def test_malformed_key_file_at_start_up_names_file_and_entry(tmp_path: Path, text: str,
                                                             message: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        ApiKeyStore(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_unreadable_key_file_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth.api_keys_file .*missing\.toml: cannot stat"):
        ApiKeyStore(tmp_path / "missing.toml")


def test_refresh_takes_edits_and_keeps_the_last_good_keys(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alice, bob = new_key(), new_key()
    path = tmp_path / "keys.toml"
    path.write_text(entry(alice))
    store = ApiKeyStore(path)
    assert store.refresh() is False  # unchanged: not re-read
    path.write_text(entry(alice, extra="revoked = true") + entry(bob, "bob", "bob-1"))
    assert store.refresh() is True
    with pytest.raises(Unauthorized, match="revoked API key"):
        store.lookup(alice)
    assert store.lookup(bob).subject == "bob"
    for broken in ("[[keys]\n", None):  # invalid, then gone
        if broken is None:
            path.unlink()
        else:
            path.write_text(broken)
        with caplog.at_level(logging.ERROR, "streamer.security.apikeys"):
            assert store.refresh() is False
        assert "keeping the last good 2 key(s)" in caplog.text
        caplog.clear()
        assert store.lookup(bob).subject == "bob"
    assert store.refresh() is False and not caplog.text  # one error per change, not per look


def test_cli_new_key_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["auth", "new-key", "--subject", "alice", "--id", "alice-laptop"]) == 0
    out = capsys.readouterr().out
    key, _, rest = out.partition("\n")
    assert key.startswith(KEY_PREFIX) and key not in rest  # the key is printed once
    assert "[[keys]]" in rest
    path = tmp_path / "keys.toml"
    path.write_text(rest)
    assert ApiKeyStore(path).lookup(key) == Identity("alice", "api_key", {}, "alice-laptop")


def test_cli_new_key_default_id_and_refused_subject(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["auth", "new-key", "--subject", "bob"]) == 0
    assert re.search(r'id = "bob-[0-9a-f]{6}"', capsys.readouterr().out)
    assert cli.main(["auth", "new-key", "--subject", "anonymous"]) == 2


# --- JWT -----------------------------------------------------------------------------------

def pem(key: Any, private: bool = False) -> bytes:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {"rsa": rsa.generate_private_key(65537, 2048),
            "rsa2": rsa.generate_private_key(65537, 2048),
            "ec": ec.generate_private_key(ec.SECP256R1()),
            "ec2": ec.generate_private_key(ec.SECP256R1())}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "exp": now + 600, "iat": now, "jti": "t-1"}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def hs256(**changes: Any) -> str:
    return jwt.encode(claims(**changes), SECRET, algorithm="HS256")


def jwt_auth(**changes: Any) -> AuthConfig:
    return replace(AuthConfig(mode="jwt", jwt_leeway_s=0), **changes)


def verifier(env: dict[str, str] | None = None, **changes: Any) -> JwtAuthenticator:
    return JwtAuthenticator(jwt_auth(**changes), ENV if env is None else env)


def refusal(auth: JwtAuthenticator, token: str | None) -> str:
    with pytest.raises(Unauthorized) as info:
        auth.verify(token)
    assert info.value.code == "unauthorized"
    return info.value.message


def test_hs256_valid_token_gives_the_identity() -> None:
    auth = verifier(jwt_policy_claim="streamer")
    token = hs256(streamer={"providers": ["local"], "daily_tokens": 100})
    assert auth.verify(token) == Identity(
        "alice", "jwt", {"providers": ("local",), "daily_tokens": 100}, "t-1")
    assert auth.verify(hs256(jti=None)).credential_id is None


def test_identity_claim_is_configurable() -> None:
    auth = verifier(jwt_identity_claim="email")
    assert auth.verify(hs256(email="a@example.com")).subject == "a@example.com"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    return (b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
            + "." + b64(b"sig"))


@pytest.mark.parametrize(("token", "message"), [
    (None, "missing credentials"),
    ("", "missing credentials"),
    (hs256(exp=int(time.time()) - 5), "token expired"),
    (hs256(nbf=int(time.time()) + 300), "token not yet valid"),
    (hs256(iat=int(time.time()) + 300), "token not yet valid"),
    (hs256(aud="other", iss="idp"), "wrong audience"),
    (hs256(iss="idp"), "wrong audience"),  # aud required once configured
    (hs256(aud="api", iss="evil"), "wrong issuer"),
    (hs256(aud="api"), "wrong issuer"),  # iss required once configured
    (jwt.encode(claims(aud="api", iss="idp"), "t" * 32, algorithm="HS256"), "bad signature"),
    (hs256(aud="api", iss="idp")[:-3] + "AAA", "bad signature"),
    ("not-a-token", "malformed token"),
    ("a.b.c", "malformed token"),
    (hs256(aud="api", iss="idp", exp="soon"), "malformed token"),
    (hs256(aud="api", iss="idp", exp=None), "token has no exp"),
    (hs256(aud="api", iss="idp", sub=None), "token names no identity"),
    (hs256(aud="api", iss="idp", sub=""), "token names no identity"),
    (hs256(aud="api", iss="idp", sub=42), "token names no identity"),
    (hs256(aud="api", iss="idp", sub="anonymous"), "token names no identity"),
    (jwt.encode(claims(aud="api", iss="idp"), None, algorithm="none"), "algorithm not allowed"),
    (unsigned(claims(aud="api", iss="idp"), {"alg": "NONE"}), "algorithm not allowed"),
    (unsigned(claims(aud="api", iss="idp"), {"typ": "JWT"}), "algorithm not allowed"),
    (jwt.encode(claims(aud="api", iss="idp"), "h" * 48, algorithm="HS384"),
     "algorithm not allowed"),
    (hs256(aud="api", iss="idp", streamer=["local"]), "malformed token"),
    (hs256(aud="api", iss="idp", streamer={"max_token": 1}), "malformed token"),
])
def test_each_jwt_failure_has_its_message(token: str | None, message: str) -> None:
    auth = verifier(jwt_audience="api", jwt_issuer="idp", jwt_policy_claim="streamer")
    assert refusal(auth, token) == message


def test_audience_list_and_leeway() -> None:
    assert verifier(jwt_audience="api").verify(hs256(aud=["x", "api"])).subject == "alice"
    late = hs256(exp=int(time.time()) - 10)
    assert refusal(verifier(), late) == "token expired"
    assert verifier(jwt_leeway_s=30).verify(late).subject == "alice"


def test_rs256_and_es256_with_pem_files(tmp_path: Path, keys: dict[str, Any]) -> None:
    for name, algorithm in (("rsa", "RS256"), ("ec", "ES256")):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(pem(keys[name]))
        auth = verifier(jwt_algorithms=(algorithm,), jwt_public_key_file=str(path), env={})
        assert auth.verify(jwt.encode(claims(), keys[name], algorithm=algorithm)).subject \
            == "alice"
        other = jwt.encode(claims(), keys[name + "2"], algorithm=algorithm)
        assert refusal(auth, other) == "bad signature"


def write_jwks(path: Path, keys: dict[str, Any]) -> None:
    jwks = [{**RSAAlgorithm.to_jwk(keys["rsa"].public_key(), as_dict=True), "kid": "rsa-1"},
            {**ECAlgorithm.to_jwk(keys["ec"].public_key(), as_dict=True), "kid": "ec-1"},
            {**ECAlgorithm.to_jwk(keys["ec2"].public_key(), as_dict=True), "kid": "ec-2"}]
    path.write_text(json.dumps({"keys": jwks}))


def test_jwks_picks_the_key_by_kid(tmp_path: Path, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, keys)
    auth = verifier(jwt_algorithms=("RS256", "ES256"), jwt_jwks_file=str(path), env={})

    def token(key: str, algorithm: str, kid: str | None) -> str:
        return jwt.encode(claims(), keys[key], algorithm=algorithm,
                          headers={"kid": kid} if kid else None)

    assert auth.verify(token("rsa", "RS256", "rsa-1")).subject == "alice"
    assert auth.verify(token("ec", "ES256", "ec-1")).subject == "alice"
    assert auth.verify(token("ec2", "ES256", "ec-2")).subject == "alice"
    assert refusal(auth, token("ec", "ES256", "ec-2")) == "bad signature"  # wrong key for kid
    assert refusal(auth, token("ec", "ES256", "ec-9")) == "bad signature"  # unknown kid
    assert refusal(auth, token("ec", "ES256", None)) == "bad signature"  # no kid, 3 keys
    assert refusal(auth, token("ec", "ES256", "rsa-1")) == "algorithm not allowed"


def forged_hs256(payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token signed by hand (PyJWT refuses to sign with a PEM as the secret)."""
    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "."
                     + b64(json.dumps(payload).encode()))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def test_key_confusion_is_refused(tmp_path: Path, keys: dict[str, Any]) -> None:
    """An HS256 token "signed" with the server's public key (RFC 8725 §2.1, §3.1)."""
    public = pem(keys["rsa"])
    path = tmp_path / "rsa.pem"
    path.write_bytes(public)
    forged = forged_hs256(claims(), public)
    rs_only = verifier(jwt_algorithms=("RS256",), jwt_public_key_file=str(path), env={})
    assert refusal(rs_only, forged) == "algorithm not allowed"
    both = verifier(jwt_algorithms=("HS256", "RS256"), jwt_public_key_file=str(path))
    assert refusal(both, forged) == "bad signature"  # HS* is checked against the secret only
    with pytest.raises(jwt.InvalidKeyError):  # and PyJWT itself refuses a PEM as HMAC secret
        jwt.decode(forged, public, algorithms=["HS256"])
    with pytest.raises(ConfigError, match="is a PEM or SSH key"):
        verifier({"STREAMER_JWT_SECRET": public.decode()})


# --- start-up checks ---------------------------------------------------------------------

def config(host: str = "127.0.0.1", **auth: Any) -> Config:
    return Config(server=ServerConfig(host=host), auth=replace(AuthConfig(), **auth))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]",
                                  "::ffff:127.0.0.1"])
def test_mode_none_on_loopback_is_allowed(host: str) -> None:
    validate_auth(config(host), {})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.5", "example.com"])
def test_mode_none_elsewhere_is_refused(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_auth(config(host), {})
    assert str(info.value) == ("auth.mode = none is only allowed on a loopback address; "
                               "set auth.mode")


def test_a_key_or_jwt_mode_may_bind_anywhere(tmp_path: Path) -> None:
    validate_auth(config("0.0.0.0", mode="jwt"), ENV)
    path = tmp_path / "keys.toml"
    path.write_text(entry(new_key()))
    validate_auth(config("0.0.0.0", mode="api_key", api_keys_file=str(path)), {})


def test_validate_auth_refuses(tmp_path: Path, keys: dict[str, Any]) -> None:
    rsa_pem, ec_pem, private = (tmp_path / n for n in ("rsa.pem", "ec.pem", "private.pem"))
    rsa_pem.write_bytes(pem(keys["rsa"]))
    ec_pem.write_bytes(pem(keys["ec"]))
    private.write_bytes(pem(keys["rsa"], private=True))
    bad_json = tmp_path / "jwks.json"
    bad_json.write_text("{")
    bad_toml = tmp_path / "keys.toml"
    bad_toml.write_text("[[keys]]\nid = 'a'\n")
    cases: list[tuple[dict[str, Any], dict[str, str], str]] = [
        ({"mode": "api_key"}, {}, "auth.mode = api_key needs auth.api_keys_file"),
        ({"mode": "api_key", "api_keys_file": str(tmp_path / "nope")}, {}, "cannot stat"),
        ({"mode": "api_key", "api_keys_file": str(bad_toml)}, {}, "keys[0] ('a'): subject"),
        ({"mode": "jwt"}, {}, "STREAMER_JWT_SECRET holding the HS256/HS384/HS512 secret is "
                              "not set"),
        ({"mode": "jwt"}, {"STREAMER_JWT_SECRET": "x" * 31}, "is 31 bytes; at least 32"),
        ({"mode": "jwt", "jwt_algorithms": ("HS512",)}, ENV, "is 32 bytes; at least 64"),
        ({"mode": "jwt", "jwt_algorithms": ("none",)}, ENV, "'none' (unsigned tokens)"),
        ({"mode": "jwt", "jwt_algorithms": ("HS1",)}, ENV, "'HS1' is not one of"),
        ({"mode": "jwt", "jwt_algorithms": ()}, ENV, "must name at least one algorithm"),
        ({"mode": "jwt", "jwt_identity_claim": ""}, ENV, "jwt_identity_claim must name"),
        ({"mode": "jwt", "jwt_algorithms": ("RS256",)}, {},
         "RS256 need auth.jwt_public_key_file or auth.jwt_jwks_file"),
        ({"mode": "jwt", "jwt_algorithms": ("RS256",), "jwt_public_key_file": str(ec_pem)},
         {}, "not a public key for RS256"),
        ({"mode": "jwt", "jwt_algorithms": ("ES256",), "jwt_public_key_file": str(private)},
         {}, "not a public key for ES256"),
        ({"mode": "jwt", "jwt_algorithms": ("RS256",), "jwt_public_key_file": str(private)},
         {}, "holds a private key"),
        ({"mode": "jwt", "jwt_algorithms": ("RS256",), "jwt_public_key_file": str(rsa_pem),
          "jwt_jwks_file": str(bad_json)}, {}, "set one of"),
        ({"mode": "jwt", "jwt_algorithms": ("ES256",), "jwt_jwks_file": str(bad_json)}, {},
         "not a JWK Set"),
        ({"mode": "jwt", "jwt_algorithms": ("ES256",), "jwt_jwks_file": str(tmp_path / "n")},
         {}, "cannot read"),
    ]
    for auth, env, message in cases:
        with pytest.raises(ConfigError) as info:
            validate_auth(config(**auth), env)
        assert message in str(info.value), (auth, str(info.value))
        assert "s" * 32 not in str(info.value)  # never the secret


def test_jwks_checks(tmp_path: Path, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    jwk = ECAlgorithm.to_jwk(keys["ec"].public_key(), as_dict=True)
    for jwks, message in (
            ([{**jwk, "kid": "a"}, {**jwk, "kid": "a"}], "two usable keys with kid 'a'"),
            ([jwk, {**jwk, "kid": "b"}], "each needs a kid"),
            ([{**jwk, "kid": "a"}], "no key for RS256")):
        path.write_text(json.dumps({"keys": jwks}))
        algorithms = ("RS256",) if "RS256" in message else ("ES256",)
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate_auth(config(mode="jwt", jwt_algorithms=algorithms,
                                 jwt_jwks_file=str(path)), {})
    path.write_text(json.dumps({"keys": [jwk]}))  # one key without kid: used for any token
    auth = verifier(jwt_algorithms=("ES256",), jwt_jwks_file=str(path), env={})
    assert auth.verify(jwt.encode(claims(), keys["ec"], algorithm="ES256")).subject == "alice"


def test_build_authenticator_modes(tmp_path: Path) -> None:
    assert isinstance(build_authenticator(AuthConfig()), NoAuthenticator)
    assert build_authenticator(AuthConfig(mode="jwt"), ENV).mode == "jwt"
    path = tmp_path / "keys.toml"
    path.write_text("")
    assert build_authenticator(AuthConfig(mode="api_key", api_keys_file=str(path))).mode \
        == "api_key"
    assert ANONYMOUS == Identity("anonymous", "none")


def test_describe_auth() -> None:
    assert describe_auth(config()) == ("auth: none — anyone who can reach 127.0.0.1:8000 "
                                       "controls every session")
    assert "[::1]:8000" in describe_auth(config("::1"))
    assert describe_auth(config(mode="jwt", jwt_algorithms=("RS256",), jwt_audience="api",
                                jwt_issuer="idp", jwt_jwks_file="/k.json")) \
        == "auth: jwt (RS256, aud=api, iss=idp, jwks=/k.json)"
    assert describe_auth(config(mode="api_key", api_keys_file="/k.toml")) \
        == "auth: api_key (hashed keys in /k.toml, re-read on change)"
