"""JWT bearer tokens (RFC 7519), verified with PyJWT 2.x (https://pyjwt.readthedocs.io).

Keys, by algorithm family (``auth.jwt_algorithms``; ``none`` is never accepted):

* HS256/HS384/HS512: a shared secret in the environment variable ``auth.jwt_secret_env``,
  at least as long as the hash (RFC 7518 §3.2: 32 bytes for HS256);
* RS*/PS*/ES*/EdDSA: a PEM public key (``auth.jwt_public_key_file``) or a JWK Set
  (``auth.jwt_jwks_file``, RFC 7517 §5; the key is picked by the token header's ``kid``,
  §4.5). Both are read once, when the authenticator is built.

The header's ``alg`` picks the family, so an HS* signature is only ever checked against
the secret, never against a public key (the "key confusion" attack: a token signed with
HMAC using the public key as the secret). PyJWT also refuses a PEM or SSH key as an HMAC
secret, and :func:`_hmac_secret` refuses such a secret at start-up.

Claims (RFC 7519 §4.1): ``exp`` required (§4.1.4); ``nbf`` (§4.1.5) and ``iat`` checked
when present; ``aud`` (§4.1.3) when ``auth.jwt_audience`` is set; ``iss`` (§4.1.1) when
``auth.jwt_issuer`` is set; all with ``auth.jwt_leeway_s`` of clock skew. The identity is
the claim ``auth.jwt_identity_claim``; per-identity policy the object in
``auth.jwt_policy_claim`` (if set). Each failure is an :class:`Unauthorized` with one of
the short fixed messages of :data:`MESSAGES`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms
from jwt.utils import is_pem_format, is_ssh_key

from streamer.config import AuthConfig, ConfigError
from streamer.errors import Unauthorized
from streamer.security.identity import ANONYMOUS, Identity, RequestInfo, policy_overrides

log = logging.getLogger("streamer.security.jwt")

#: HS* and the minimum secret length in bytes (RFC 7518 §3.2: the hash's size)
HMAC_ALGORITHMS: Mapping[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}
#: public-key algorithms (RFC 7518 §3.3-3.5, RFC 8037 §3.1)
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})
#: every algorithm ``auth.jwt_algorithms`` may name; ``none`` is never one
ALLOWED_ALGORITHMS = frozenset(HMAC_ALGORITHMS) | PUBLIC_KEY_ALGORITHMS

#: the message of each :class:`Unauthorized`, by PyJWT exception (checked in this order:
#: subclasses first)
MESSAGES: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidKeyError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.PyJWTError, "malformed token"),
)
#: a missing claim: ``exp`` has its own message, ``aud`` and ``iss`` count as wrong
_MISSING = {"exp": "token has no exp", "aud": "wrong audience", "iss": "wrong issuer"}


def reason(exc: Exception) -> str:
    """The fixed client-facing message for a PyJWT exception."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _MISSING.get(exc.claim, "malformed token")
    return next((text for kind, text in MESSAGES if isinstance(exc, kind)), "malformed token")


def check_algorithms(algorithms: tuple[str, ...]) -> None:
    """Raises ConfigError: none given, ``none``, or one outside :data:`ALLOWED_ALGORITHMS`."""
    if not algorithms:
        raise ConfigError("auth.jwt_algorithms must name at least one algorithm")
    for name in algorithms:
        if name.lower() == "none":
            raise ConfigError("auth.jwt_algorithms: 'none' (unsigned tokens) is never accepted")
        if name not in ALLOWED_ALGORITHMS:
            raise ConfigError(f"auth.jwt_algorithms: {name!r} is not one of "
                              f"{', '.join(sorted(ALLOWED_ALGORITHMS))}")


def _hmac_secret(auth: AuthConfig, env: Mapping[str, str]) -> bytes | None:
    """The HS* secret from ``env[auth.jwt_secret_env]``, or ``None`` if no HS* is allowed.

    Raises:
        ConfigError: unset, shorter than the longest allowed hash, or a PEM/SSH key.
    """
    needed = max((HMAC_ALGORITHMS[a] for a in auth.jwt_algorithms if a in HMAC_ALGORITHMS),
                 default=0)
    if not needed:
        return None
    name = auth.jwt_secret_env
    secret = env.get(name, "").encode() if name else b""
    if not secret:
        raise ConfigError(f"auth.jwt_secret_env: the environment variable {name or '(none)'} "
                          f"holding the {'/'.join(HMAC_ALGORITHMS)} secret is not set")
    if len(secret) < needed:
        raise ConfigError(f"auth.jwt_secret_env: the secret in {name} is {len(secret)} bytes; "
                          f"at least {needed} are needed (RFC 7518 §3.2)")
    if is_pem_format(secret) or is_ssh_key(secret):
        raise ConfigError(f"auth.jwt_secret_env: the secret in {name} is a PEM or SSH key; "
                          "an HMAC secret must be random bytes (a public key is no secret)")
    return secret


def _check_public(prepared: Any, algorithm: str, where: str) -> None:
    if hasattr(prepared, "private_bytes"):
        raise ConfigError(f"{where} holds a private key; give the server only the public key")
    too_short = get_default_algorithms()[algorithm].check_key_length(prepared)
    if too_short:
        raise ConfigError(f"{where}: {too_short}")


def _pem_keys(path: str, algorithms: tuple[str, ...]) -> dict[str, Any]:
    """The PEM public key, prepared for each allowed public-key algorithm.

    Raises:
        ConfigError: unreadable, not a key, a private key, or the wrong type or curve
            for one of the algorithms.
    """
    where = f"auth.jwt_public_key_file {path}"
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    keys: dict[str, Any] = {}
    for algorithm in algorithms:
        try:
            keys[algorithm] = get_default_algorithms()[algorithm].prepare_key(pem)
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: not a public key for {algorithm} ({exc})") from None
        _check_public(keys[algorithm], algorithm, where)
    return keys


def _jwks_keys(path: str, algorithms: tuple[str, ...]) -> dict[str | None, jwt.PyJWK]:
    """The usable keys of a JWK Set file (RFC 7517 §5), by ``kid``.

    Raises:
        ConfigError: unreadable, not a JWK Set, a duplicate ``kid``, several keys of which
            one has no ``kid``, a private key, or no key for an allowed algorithm.
    """
    where = f"auth.jwt_jwks_file {path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        keyset = jwt.PyJWKSet.from_dict(data)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, AttributeError, jwt.PyJWTError) as exc:
        raise ConfigError(f"{where}: not a JWK Set: {exc}") from None
    keys: dict[str | None, jwt.PyJWK] = {}
    for key in keyset:
        if key.algorithm_name not in algorithms:
            log.warning("%s: key %r is for %s, which auth.jwt_algorithms does not allow",
                        where, key.key_id, key.algorithm_name)
            continue
        if key.key_id in keys:
            raise ConfigError(f"{where}: two usable keys with kid {key.key_id!r}")
        _check_public(key.key, key.algorithm_name, f"{where} (kid {key.key_id!r})")
        keys[key.key_id] = key
    if not keys:
        raise ConfigError(f"{where}: no key for {', '.join(algorithms)}")
    if None in keys and len(keys) > 1:
        raise ConfigError(f"{where}: with several keys each needs a kid")
    return keys


class JwtAuthenticator:
    """``auth.mode = "jwt"``: an :class:`~streamer.security.identity.Authenticator` for
    bearer JWTs. Verification is CPU only (tens of µs for RS256/ES256), done on the loop.

    Raises:
        ConfigError: (constructor) a bad algorithm list, a missing or short secret, a
            missing, unreadable or unfit key file or JWKS, both or neither of them when a
            public-key algorithm is allowed, or no ``auth.jwt_identity_claim``.
    """

    mode = "jwt"

    def __init__(self, auth: AuthConfig, env: Mapping[str, str]) -> None:
        check_algorithms(auth.jwt_algorithms)
        if not auth.jwt_identity_claim:
            raise ConfigError("auth.jwt_identity_claim must name a claim")
        self.auth = auth
        self._secret = _hmac_secret(auth, env)
        public = tuple(a for a in auth.jwt_algorithms if a in PUBLIC_KEY_ALGORITHMS)
        self._pem: dict[str, Any] = {}
        self._jwks: dict[str | None, jwt.PyJWK] = {}
        if public and auth.jwt_public_key_file and auth.jwt_jwks_file:
            raise ConfigError("set one of auth.jwt_public_key_file and auth.jwt_jwks_file")
        if public and auth.jwt_jwks_file:
            self._jwks = _jwks_keys(auth.jwt_jwks_file, public)
        elif public and auth.jwt_public_key_file:
            self._pem = _pem_keys(auth.jwt_public_key_file, public)
        elif public:
            raise ConfigError(f"auth.jwt_algorithms {', '.join(public)} need "
                              "auth.jwt_public_key_file or auth.jwt_jwks_file")

    def _key(self, header: Mapping[str, Any]) -> tuple[str, Any]:
        """The header's algorithm and the key to check it with.

        Raises:
            Unauthorized: "algorithm not allowed", "bad signature" (no key for the ``kid``).
        """
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.auth.jwt_algorithms:
            raise Unauthorized("algorithm not allowed")
        if algorithm in HMAC_ALGORITHMS:
            return algorithm, self._secret
        if not self._jwks:
            return algorithm, self._pem[algorithm]
        kid = header.get("kid")
        jwk = self._jwks.get(kid) if isinstance(kid, str) else None
        if jwk is None and kid is None and len(self._jwks) == 1:
            jwk = next(iter(self._jwks.values()))
        if jwk is None:
            log.info("refused a JWT: no key with kid %r", kid)
            raise Unauthorized("bad signature")
        if jwk.algorithm_name != algorithm:  # the key fixes the algorithm (RFC 7517 §4.4)
            raise Unauthorized("algorithm not allowed")
        return algorithm, jwk.key

    def _claims(self, token: str) -> dict[str, Any]:
        """The verified claims. Raises Unauthorized (see :data:`MESSAGES`)."""
        auth = self.auth
        try:
            algorithm, key = self._key(jwt.get_unverified_header(token))
            return jwt.decode(
                token, key, algorithms=[algorithm], audience=auth.jwt_audience or None,
                issuer=auth.jwt_issuer or None, leeway=auth.jwt_leeway_s,
                options={"require": ["exp"], "verify_aud": bool(auth.jwt_audience),
                         "verify_sub": False, "verify_jti": False,  # checked in verify
                         "enforce_minimum_key_length": True})
        except jwt.PyJWTError as exc:
            log.info("refused a JWT: %s", exc)
            raise Unauthorized(reason(exc)) from None

    def verify(self, token: str | None) -> Identity:
        """The identity a token proves (synchronous; :meth:`authenticate` is the same).

        Returns:
            ``Identity(claims[jwt_identity_claim], "jwt", policy, jti)``.

        Raises:
            Unauthorized: "missing credentials", "malformed token", "algorithm not allowed",
                "bad signature", "token has no exp", "token expired", "token not yet
                valid", "wrong audience", "wrong issuer", "token names no identity"; an
                invalid policy claim is a "malformed token".
        """
        if not token:
            raise Unauthorized("missing credentials")
        claims = self._claims(token)
        subject = claims.get(self.auth.jwt_identity_claim)
        if not isinstance(subject, str) or not subject or subject == ANONYMOUS.subject:
            raise Unauthorized("token names no identity")
        policy: dict[str, Any] = {}
        if self.auth.jwt_policy_claim and self.auth.jwt_policy_claim in claims:
            try:
                policy = policy_overrides(claims[self.auth.jwt_policy_claim])
            except ValueError as exc:
                log.info("refused a JWT for %s: policy claim: %s", subject, exc)
                raise Unauthorized("malformed token") from None
        jti = claims.get("jti")
        return Identity(subject, "jwt", policy, jti if isinstance(jti, str) else None)

    async def authenticate(self, token: str | None, request: RequestInfo) -> Identity:
        """See :meth:`verify`."""
        return self.verify(token)
