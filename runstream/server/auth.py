"""Who is calling: the security key, a JWT or a run-scoped stream token, as a ``Principal``.

Everything but the JWKS fetch (``server/jwks.py``) is pure: a token in, a
``Principal`` or an ``Unauthorized`` out. What a principal may then do is
``server/access.py``'s business, the same for every transport.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

from runstream.errors import AuthConfigError, Forbidden, TokenExpired, Unauthorized
from runstream.server.jwks import JwksCache

__all__ = [
    "ADMIN_SCOPE",
    "ANONYMOUS",
    "AuthConfig",
    "AuthMode",
    "Authenticator",
    "Principal",
    "StreamTokens",
    "principal_from_claims",
]

ADMIN_SCOPE = "agent_os:admin"
AuthMode = Literal["none", "security_key", "jwt"]
_ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")
_STREAM_AUDIENCE = "runstream:stream"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``admin`` sees and steers every run; ``run_id`` is set for a
    stream token, which may follow that one run's SSE and nothing else."""

    user_id: str | None
    scopes: frozenset[str] = frozenset()
    admin: bool = False
    via: Literal["none", "security_key", "jwt", "stream"] = "none"
    expires_at: float | None = None
    run_id: str | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at


ANONYMOUS = Principal(None, admin=True, via="none")
"""The caller when the server has no authentication: it may do everything, as before auth existed."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class AuthConfig:
    """How clients authenticate. Any of: ``security_key`` (a shared secret, an unscoped admin),
    a JWT verified with ``jwt_secret`` (HS256), ``jwt_public_key`` (a PEM: RS256/ES256...) or
    the keys at ``jwt_jwks_url``. ``user_isolation`` (JWT only): a run belongs to its user.

    ``AuthConfig.from_env()`` reads ``RUNSTREAM_SECURITY_KEY`` (or ``OS_SECURITY_KEY``),
    ``RUNSTREAM_JWT_SECRET``, ``RUNSTREAM_JWT_PUBLIC_KEY`` (PEM text, or a path to it),
    ``RUNSTREAM_JWT_JWKS_URL``, ``RUNSTREAM_JWT_AUDIENCE``, ``RUNSTREAM_JWT_ISSUER``,
    ``RUNSTREAM_JWT_USER_CLAIM``, ``RUNSTREAM_USER_ISOLATION=1`` and
    ``RUNSTREAM_STREAM_TOKEN_SECRET``.
    """

    security_key: str | None = None
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_algorithms: tuple[str, ...] | None = None
    """Default: HS256 with a secret, the asymmetric ones (RS*, ES*, PS*, EdDSA) with keys."""
    user_claim: str = "sub"
    leeway: float = 10.0
    """Seconds of clock skew allowed on ``exp`` and ``nbf``."""
    require_exp: bool = True
    """A JWT without ``exp`` would be valid for ever: refused unless this is False."""
    user_isolation: bool = False
    admin_scope: str = ADMIN_SCOPE
    stream_token_secret: str | None = None
    """Signs stream tokens; default: derived from the security key or JWT secret, else random
    per process (set it when several replicas serve one log with public-key JWTs)."""
    stream_token_ttl: float = 300.0
    jwks_refresh_interval: float = 30.0
    """At most one JWKS fetch per this many seconds for tokens with an unknown ``kid``."""
    jwks_max_age: float = 3600.0
    _random_stream_secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)

    @classmethod
    def from_env(cls, **overrides: Any) -> AuthConfig:
        """The environment's settings; ``overrides`` that are not None win."""
        public_key = os.environ.get("RUNSTREAM_JWT_PUBLIC_KEY") or None
        if public_key and "-----BEGIN" not in public_key and os.path.isfile(public_key):
            with open(public_key) as pem:
                public_key = pem.read()
        values: dict[str, Any] = {
            "security_key": os.environ.get("RUNSTREAM_SECURITY_KEY") or os.environ.get("OS_SECURITY_KEY") or None,
            "jwt_secret": os.environ.get("RUNSTREAM_JWT_SECRET") or None,
            "jwt_public_key": public_key,
            "jwt_jwks_url": os.environ.get("RUNSTREAM_JWT_JWKS_URL") or None,
            "jwt_audience": os.environ.get("RUNSTREAM_JWT_AUDIENCE") or None,
            "jwt_issuer": os.environ.get("RUNSTREAM_JWT_ISSUER") or None,
            "user_claim": os.environ.get("RUNSTREAM_JWT_USER_CLAIM") or "sub",
            "user_isolation": _env_flag("RUNSTREAM_USER_ISOLATION"),
            "stream_token_secret": os.environ.get("RUNSTREAM_STREAM_TOKEN_SECRET") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.check()
        return config

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks_url)

    @property
    def mode(self) -> AuthMode:
        return "jwt" if self.jwt_enabled else "security_key" if self.security_key else "none"

    def check(self) -> None:
        """Refuse settings that would not protect what they seem to: fail at start, not open."""
        sources = [s for s in (self.jwt_secret, self.jwt_public_key, self.jwt_jwks_url) if s]
        if len(sources) > 1:
            raise AuthConfigError("Set one of jwt_secret, jwt_public_key and jwt_jwks_url, not several")
        if self.user_isolation and not self.jwt_enabled:
            raise AuthConfigError(
                "user_isolation needs JWT authentication (a user per token): set a JWT secret, public key or JWKS URL"
            )
        if self.jwt_secret is not None and len(self.jwt_secret) < 16:
            raise AuthConfigError("jwt_secret is too short: use at least 16 characters (32 random bytes is better)")
        if self.jwt_algorithms and "none" in (a.lower() for a in self.jwt_algorithms):
            raise AuthConfigError("the 'none' algorithm is never accepted")

    def algorithms(self) -> list[str]:
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return ["HS256"] if self.jwt_secret else list(_ASYMMETRIC)

    def stream_secret(self) -> str:
        if self.stream_token_secret:
            return self.stream_token_secret
        material = self.jwt_secret or self.security_key
        if material:  # the same on every replica that shares the secret, and never the secret itself
            return hmac.new(material.encode(), b"runstream stream token v1", hashlib.sha256).hexdigest()
        return self._random_stream_secret


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """``scopes`` (a list, or one space-separated string) and OAuth's ``scope``, together."""
    found: set[str] = set()
    for name in ("scopes", "scope"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(s for s in value if isinstance(s, str))
    return frozenset(found)


def principal_from_claims(claims: dict[str, Any], config: AuthConfig) -> Principal:
    """A verified JWT's claims as a principal; with isolation, a token with no user is refused."""
    user = claims.get(config.user_claim)
    user_id = user if isinstance(user, str) and user else None
    scopes = _scopes(claims)
    admin = config.admin_scope in scopes
    if config.user_isolation and user_id is None and not admin:
        raise Forbidden(f"Authenticated request is missing a user identity (the token has no '{config.user_claim}' claim)")
    exp = claims.get("exp")
    return Principal(
        user_id, scopes, admin, "jwt", float(exp) if isinstance(exp, (int, float)) else None
    )


def decode_jwt(token: str, key: Any, algorithms: list[str], config: AuthConfig) -> dict[str, Any]:
    """The verified claims of ``token``, or ``Unauthorized`` saying why not."""
    required = ["exp"] if config.require_exp else []
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            leeway=config.leeway,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("Token has expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("Token is not valid yet (nbf or iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("Invalid token audience: token not valid for this server") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("Invalid token issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"Invalid token: it has no '{exc.claim}' claim") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"Invalid token: {exc}") from None
    return claims


class StreamTokens:
    """Short-lived tokens that let a browser's ``EventSource`` follow one run: HS256 JWTs
    signed with a key of their own, so none can pass for a user's token, nor the reverse."""

    def __init__(self, secret: str, ttl: float) -> None:
        self._secret = secret
        self.ttl = ttl

    def mint(self, principal: Principal, run_id: str, now: float | None = None) -> tuple[str, float]:
        """A token for ``run_id`` and its expiry: ``ttl`` seconds, never past the caller's own token."""
        now = time.time() if now is None else now
        expires = now + self.ttl
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        claims = {"aud": _STREAM_AUDIENCE, "run": run_id, "sub": principal.user_id, "adm": principal.admin,
                  "iat": int(now), "exp": int(expires)}
        return jwt.encode(claims, self._secret, algorithm="HS256"), float(int(expires))

    def verify(self, token: str, run_id: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=_STREAM_AUDIENCE,
                                options={"require": ["exp", "run"]})
        except jwt.ExpiredSignatureError:
            raise TokenExpired("Stream token has expired: mint a new one") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("Invalid stream token") from None
        if claims["run"] != run_id:
            raise Unauthorized("Invalid stream token")  # it is for another run
        user = claims.get("sub")
        return Principal(user if isinstance(user, str) else None, admin=claims.get("adm") is True,
                         via="stream", expires_at=float(claims["exp"]), run_id=run_id)


class Authenticator:
    """Turns a bearer token into a ``Principal`` under one ``AuthConfig``."""

    def __init__(self, config: AuthConfig) -> None:
        config.check()
        self.config = config
        self.jwks = (
            JwksCache(config.jwt_jwks_url, config.jwks_refresh_interval, config.jwks_max_age)
            if config.jwt_jwks_url else None
        )
        self.stream_tokens = StreamTokens(config.stream_secret(), config.stream_token_ttl)

    @property
    def required(self) -> bool:
        return self.config.mode != "none"

    async def authenticate(self, token: str | None) -> Principal:
        """The caller ``token`` stands for; ``Unauthorized``/``TokenExpired``/``Forbidden`` if none."""
        config = self.config
        if not self.required:
            return ANONYMOUS
        if not token:
            raise Unauthorized("Token is required")
        if config.security_key is not None and hmac.compare_digest(token.encode(), config.security_key.encode()):
            return Principal(None, admin=True, via="security_key")
        if not config.jwt_enabled or token.count(".") != 2:
            raise Unauthorized("Invalid token")
        key: Any
        algorithms = config.algorithms()
        if self.jwks is not None:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
            except jwt.InvalidTokenError as exc:
                raise Unauthorized(f"Invalid token: {exc}") from None
            jwk = await self.jwks.key(kid if isinstance(kid, str) else None)
            if jwk.algorithm_name not in algorithms:
                raise Unauthorized(f"Invalid token: algorithm {jwk.algorithm_name} is not allowed")
            key, algorithms = jwk.key, [jwk.algorithm_name]
        else:
            key = config.jwt_secret or config.jwt_public_key
        return principal_from_claims(decode_jwt(token, key, algorithms, config), config)

    def authenticate_stream(self, token: str, run_id: str) -> Principal:
        return self.stream_tokens.verify(token, run_id)

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()
