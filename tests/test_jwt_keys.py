"""Public-key JWTs: a PEM key, and a JWKS served by a real local HTTP server whose keys rotate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from runstream import AuthConfig, Server
from runstream.errors import Unauthorized
from runstream.server.jwks import JwksCache
from tests.authkit import bearer
from tests.conftest import serve_in_thread
from tests.runkit import demo_workflow


class Jwks:
    """A JWKS endpoint on 127.0.0.1:<ephemeral> whose keys the test replaces, counting its requests."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.requests += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        self.keys = [{**RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}
                     for kid, k in keys]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.close()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed(key: Any, kid: str | None, algorithm: str = "RS256", **claims: Any) -> str:
    body = {"sub": "alice", "scopes": ["workflows:run"], "exp": int(time.time()) + 600, "iss": "https://issuer.test",
            "aud": "runstream", **claims}
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def test_jwks_rotation_is_followed_and_forged_kids_do_not_hammer_the_issuer(tmp_path: Path, jwks: Jwks) -> None:
    old, new = rsa_key(), rsa_key()
    jwks.publish(("k1", old))
    config = AuthConfig(jwt_jwks_url=jwks.url, jwt_issuer="https://issuer.test", jwt_audience="runstream",
                        user_isolation=True, jwks_refresh_interval=0)
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db", auth=config)
    with serve_in_thread(server) as running, httpx.Client(base_url=running.http_url) as http:
        assert http.get("/runs", headers=bearer(signed(old, "k1"))).status_code == 200
        assert http.get("/runs", headers=bearer(signed(old, "k1"))).status_code == 200
        assert jwks.requests == 1  # cached
        jwks.publish(("k2", new))  # the issuer rotates
        assert http.get("/runs", headers=bearer(signed(new, "k2"))).status_code == 200
        assert jwks.requests == 2
        retired = http.get("/runs", headers=bearer(signed(old, "k1")))
        assert retired.status_code == 401 and "unknown signing key" in retired.json()["detail"]
        for wrong in (signed(new, "k2", iss="https://evil.test"), signed(new, "k2", aud="other"),
                      signed(old, "k2"), signed(new, "k2", exp=int(time.time()) - 60)):
            assert http.get("/runs", headers=bearer(wrong)).status_code == 401


@pytest.mark.anyio
async def test_unknown_kids_refetch_at_most_once_per_interval(jwks: Jwks) -> None:
    jwks.publish(("k1", rsa_key()))
    cache = JwksCache(jwks.url, refresh_interval=3600)
    try:
        assert (await cache.key("k1")).key_id == "k1"
        assert (await cache.key(None)).key_id == "k1"  # the only key
        for forged in ("a", "b", "c"):
            with pytest.raises(Unauthorized):
                await cache.key(forged)
        assert jwks.requests == 1 and cache.fetches == 1
    finally:
        await cache.close()


def test_a_pem_public_key_verifies_es256_and_refuses_algorithm_confusion(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem)
    config = AuthConfig(jwt_public_key=pem.decode(), jwt_audience="runstream", jwt_issuer="https://issuer.test")
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db", auth=config)
    with serve_in_thread(server) as running, httpx.Client(base_url=running.http_url) as http:
        assert http.get("/runs", headers=bearer(signed(private, None, "ES256"))).status_code == 200
        claims = {"sub": "alice", "exp": int(time.time()) + 60, "aud": "runstream", "iss": "https://issuer.test"}
        assert http.get("/runs", headers=bearer(hs256_with(pem, claims))).status_code == 401
        unsigned = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, None, algorithm="none")
        assert http.get("/runs", headers=bearer(unsigned)).status_code == 401


def hs256_with(secret: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token whose HMAC secret is ``secret`` (PyJWT refuses to make one with a PEM)."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + part(json.dumps(claims).encode())
    return head + "." + part(hmac.new(secret, head.encode(), hashlib.sha256).digest())


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "key.pem").write_bytes(pem)
    monkeypatch.setenv("RUNSTREAM_JWT_PUBLIC_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("RUNSTREAM_JWT_AUDIENCE", "runstream")
    monkeypatch.setenv("RUNSTREAM_JWT_ISSUER", "https://issuer.test")
    monkeypatch.setenv("RUNSTREAM_USER_ISOLATION", "1")
    monkeypatch.setenv("RUNSTREAM_SECURITY_KEY", "ops-key")
    config = AuthConfig.from_env()
    assert config.jwt_public_key == pem.decode() and config.jwt_audience == "runstream"
    assert config.user_isolation and config.security_key == "ops-key" and config.mode == "jwt"
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db")
    assert server.access.user_isolation and server.auth.jwt_issuer == "https://issuer.test"
