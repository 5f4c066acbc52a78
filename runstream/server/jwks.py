"""The signing keys at a JWKS URL: fetched once, cached, fetched again for an unknown ``kid``.

A token naming a ``kid`` the cache lacks triggers a refresh (the issuer has rotated
its keys), but at most one per ``refresh_interval``: forged tokens with random
``kid``s cannot make the server hammer the issuer. Concurrent refreshes share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import jwt

from runstream.errors import Unauthorized

__all__ = ["JwksCache"]

logger = logging.getLogger(__name__)


class JwksCache:
    def __init__(self, url: str, refresh_interval: float = 30.0, max_age: float = 3600.0) -> None:
        self.url = url
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.fetches = 0
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key for ``kid`` (a token without one: the only key, or the one without a kid)."""
        now = time.monotonic()
        if now - self._fetched_at > self.max_age or (
            self._find(kid) is None and now - self._fetched_at >= self.refresh_interval
        ):
            await self._refresh(now)
        found = self._find(kid)
        if found is None:
            raise Unauthorized(f"Invalid token: unknown signing key {kid!r}" if kid else "Invalid token: no 'kid' header")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self, asked_at: float) -> None:
        async with self._lock:
            if self._fetched_at >= asked_at:  # another caller fetched while this one waited
                return
            try:
                if self._http is None:
                    self._http = httpx.AsyncClient(timeout=5.0)
                response = await self._http.get(self.url)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json()).keys
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                logger.warning("JWKS fetch from %s failed: %s; keeping %d cached keys", self.url, exc, len(self._keys))
                self._fetched_at = time.monotonic()  # a broken issuer is asked again after refresh_interval
                return
            self.fetches += 1
            self._keys = {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}
            self._fetched_at = time.monotonic()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
