"""The Starlette application that serves the bridge origin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import __version__
from .assets import IMMUTABLE_CACHE, STABLE_CACHE, Asset, build_assets
from .api import Api
from .config import SETTINGS_ENV, Settings, load_settings
from .handoff import HandoffCodes
from .stores import Store, StoreUnavailable, open_store

logger = logging.getLogger("cookiebridge")


class AssetEndpoint:
    """Serves one prebuilt file: headers are computed once, conditional requests answered with 304."""

    def __init__(self, asset: Asset, cache_control: str) -> None:
        self.etag = asset.etag
        self.body = asset.body
        self.headers = {**asset.headers, "Cache-Control": cache_control, "ETag": self.etag}
        self.media_type = asset.content_type

    def _matches(self, request: Request) -> bool:
        header = request.headers.get("if-none-match")
        if not header:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
        return self.etag in tags or "*" in tags

    async def handle(self, request: Request) -> Response:
        if self._matches(request):
            return Response(status_code=304, headers=self.headers)
        return Response(self.body, media_type=self.media_type, headers=self.headers)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__}, headers={"Cache-Control": "no-store"})


async def not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "not-found", "message": f"no such resource: {request.url.path}"}, status_code=404)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    message = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse({"error": "method-not-allowed", "message": message}, status_code=405, headers=allow)


def asset_routes(assets: list[Asset]) -> list[Route]:
    routes = []
    for asset in assets:
        routes.append(Route("/" + asset.name, AssetEndpoint(asset, STABLE_CACHE).handle, methods=["GET", "HEAD"]))
        if asset.hashed_name:
            routes.append(Route("/" + asset.hashed_name, AssetEndpoint(asset, IMMUTABLE_CACHE).handle, methods=["GET", "HEAD"]))
    return routes


PURGE_INTERVAL = 60.0


async def purge_periodically(store: Store) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL)
        try:
            await store.purge_expired()
        except StoreUnavailable as error:
            logger.warning("cookiebridge: could not purge expired entries: %s", error)


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """The bridge app. `store` defaults to the configured one, opened lazily and closed at shutdown."""
    assets = build_assets(settings.trusted_origins, settings.cookie_names, settings.cookie_max_age)
    store = store or open_store(settings.store)
    # itsdangerous signs with the last key and verifies with all: old keys first.
    codes = HandoffCodes([*settings.previous_secret_keys, settings.secret_key], settings.handoff_ttl)
    api = Api(settings, store, codes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        purger = asyncio.create_task(purge_periodically(store))
        try:
            yield
        finally:
            purger.cancel()
            await store.aclose()

    routes = [Route("/healthz", healthz, methods=["GET", "HEAD"]), *asset_routes(assets), *api.routes()]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: method_not_allowed}, lifespan=lifespan)
    app.state.settings = settings
    app.state.assets = {asset.name: asset for asset in assets}
    app.state.store = store
    return app


def app_from_environment() -> Starlette:
    """uvicorn factory for `serve`: the CLI puts the validated settings in the environment for each worker."""
    text = os.environ.get(SETTINGS_ENV)
    return create_app(Settings.from_json(text) if text else load_settings())
