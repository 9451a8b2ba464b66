"""The console's pages and actions: a Starlette app over one `ObjectStore`.

GET pages (browse a folder, an object with its preview and versions, usage, this node)
and GET downloads; POST actions (upload, delete, restore, recount) with the CSRF check.
Every request passes `security.GuardMiddleware` first. Handlers only call the public
store API (in a thread: the store blocks) and hand plain data to Jinja2 templates that
autoescape everything: keys and values are text, never markup.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from objectstore_s3.errors import (
    InvalidKeyError,
    KeyNotFoundError,
    ObjectStoreError,
    StorageLimitExceededError,
    StorageUnavailableError,
)
from objectstore_s3.keys import normalize_key
from objectstore_s3.store import ObjectStore

from .console import Console
from .folders import parent_of
from .preview import PREVIEW_BYTES, image_type, preview
from .security import Guard, GuardMiddleware, check_csrf
from .views import filters, folder_page, usage_page

__all__ = ["create_app"]


def create_app(
    store: ObjectStore,
    guard: Guard,
    *,
    read_only: bool = False,
    listing_ttl: float = 30.0,
    page_size: int = 200,
) -> Starlette:
    """The console for `store`, answering only as `guard` allows."""
    console = Console(store, read_only=read_only, listing_ttl=listing_ttl, page_size=page_size)
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("objectstore_s3.ui", "templates"),
        autoescape=True,  # every value is text; no template marks anything safe
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(filters())
    environment.globals["link"] = link
    pages = Pages(console, guard, Jinja2Templates(env=environment))
    routes = [
        Route("/", lambda request: RedirectResponse("/browse", 303)),
        Route("/browse", pages.browse),
        Route("/object", pages.show),
        Route("/image", pages.image),
        Route("/download", pages.download),
        Route("/confirm-delete", pages.confirm_delete),
        Route("/usage", pages.usage),
        Route("/node", pages.node),
        Route("/upload", pages.upload, methods=["POST"]),
        Route("/delete", pages.delete, methods=["POST"]),
        Route("/restore", pages.restore, methods=["POST"]),
        Route("/recount", pages.recount, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("objectstore_s3.ui", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, guard=guard)],
        exception_handlers={
            ObjectStoreError: pages.failed,
            PermissionError: pages.failed,
            HTTPException: pages.failed,
        },
    )
    app.state.console = console  # closed by the server (its upload folder)
    return app


def link(path: str, **params: Any) -> str:
    """A console URL with its query (keys may hold spaces, '#' and '$')."""
    query = urlencode({name: value for name, value in params.items() if value not in ("", None)})
    return f"{path}?{query}" if query else path


def status_of(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, KeyNotFoundError):
        return 404
    if isinstance(exc, InvalidKeyError | ValueError):
        return 400
    if isinstance(exc, PermissionError):
        return 403
    if isinstance(exc, StorageLimitExceededError):
        return 507
    if isinstance(exc, StorageUnavailableError):
        return 503
    return 409


def _message(exc: Exception) -> str:
    if isinstance(exc, KeyNotFoundError):
        return f"No such key: '{exc.key}'."
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    return str(exc)


class Pages:
    """The handlers, sharing the console's state, its guard and its templates."""

    def __init__(self, console: Console, guard: Guard, templates: Jinja2Templates) -> None:
        self.console = console
        self.store = console.store
        self.guard = guard
        self.templates = templates

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        c = self.console
        context.update(
            csrf=self.guard.csrf,
            can=c.permissions,
            read_only=c.read_only,
            identity=c.identity(),
            done=request.query_params.get("done", ""),
        )
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def failed(self, request: Request, exc: Exception) -> Response:
        status, message = status_of(exc), _message(exc)
        if request.url.path == "/upload":  # the upload script shows the message as text
            return JSONResponse({"error": message}, status)
        return self.render(request, "error.html", status, message=message, usage=None)

    # -- pages -------------------------------------------------------------------------------

    def browse(self, request: Request) -> Response:
        self.console.permissions.require("read")
        query = request.query_params
        prefix = folder_prefix(query.get("prefix", ""))
        context = folder_page(
            self.console,
            prefix,
            after=query.get("after", ""),
            name_filter=query.get("filter", ""),
            fresh=query.get("refresh") == "1",
        )
        return self.render(request, "browse.html", **context)

    def show(self, request: Request) -> Response:
        self.console.permissions.require("read")
        key = _key(request.query_params.get("key"))
        stat = self.store.stat(key)
        head = self.store.read_range(key, 0, PREVIEW_BYTES)
        seen = preview(key, head, stat.size)
        versions = self.store.history(key) if self.console.versions else None
        return self.render(
            request,
            "object.html",
            stat=stat,
            preview=seen,
            versions=versions,
            parent=key_folder(key),
            usage=None,
        )

    def image(self, request: Request) -> Response:
        self.console.permissions.require("read")
        key = _key(request.query_params.get("key"))
        head = self.store.read_range(key, 0, PREVIEW_BYTES + 1)
        media = image_type(head)
        if media is None or len(head) > PREVIEW_BYTES:
            raise HTTPException(415, "Only PNG, JPEG and GIF values up to 1 MiB show inline.")
        return Response(head, media_type=media)

    def download(self, request: Request) -> Response:
        self.console.permissions.require("read")
        key = _key(request.query_params.get("key"))
        handle, name = tempfile.mkstemp(dir=self.console.uploads)
        os.close(handle)
        try:
            self.store.download_file(key, name)
        except BaseException:
            os.unlink(name)
            raise
        return FileResponse(
            name,
            media_type="application/octet-stream",
            filename=key.rsplit("/", 1)[-1],  # Content-Disposition: attachment
            background=BackgroundTask(os.unlink, name),
        )

    def confirm_delete(self, request: Request) -> Response:
        self.console.permissions.require("delete")
        key = _key(request.query_params.get("key"))
        stat = self.store.stat(key)
        return self.render(request, "confirm_delete.html", stat=stat, usage=None)

    def usage(self, request: Request) -> Response:
        self.console.permissions.require("read")
        context = usage_page(self.console, fresh=request.query_params.get("refresh") == "1")
        return self.render(request, "usage.html", **context)

    def node(self, request: Request) -> Response:
        return self.render(request, "node.html", node=self.console.node(), usage=None)

    # -- actions (POST, CSRF-checked) ------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        await check_csrf(request, self.guard)
        self.console.permissions.require("write")
        key = _key(request.query_params.get("key"))
        handle, name = tempfile.mkstemp(dir=self.console.uploads)
        try:
            with os.fdopen(handle, "wb") as target:
                async for chunk in request.stream():
                    target.write(chunk)
            await run_in_threadpool(self.console.upload, key, Path(name))
        finally:
            os.unlink(name)
        self.console.changed()
        return JSONResponse({"saved": key})

    async def delete(self, request: Request) -> Response:
        fields = await check_csrf(request, self.guard)
        self.console.permissions.require("delete")
        key = _key(fields.get("key"))
        await run_in_threadpool(self.store.delete, key)
        self.console.changed()
        target = link("/browse", prefix=key_folder(key), done=f"Deleted '{key}'.")
        return RedirectResponse(target, 303)

    async def restore(self, request: Request) -> Response:
        fields = await check_csrf(request, self.guard)
        self.console.permissions.require("write")
        if not self.console.versions:
            raise HTTPException(404, "This version of the store does not keep versions.")
        key, version = _key(fields.get("key")), fields.get("version", "")
        await run_in_threadpool(self.store.restore, key, version)
        self.console.changed()
        target = link("/object", key=key, done=f"Restored version {version} of '{key}'.")
        return RedirectResponse(target, 303)

    async def recount(self, request: Request) -> Response:
        await check_csrf(request, self.guard)
        self.console.permissions.require("write")
        await run_in_threadpool(self.store.reconcile_usage)
        self.console.changed()
        return RedirectResponse(link("/usage", done="Usage recounted from a listing."), 303)


def _key(raw: str | None) -> str:
    if not raw:
        raise HTTPException(400, "No key given.")
    return normalize_key(raw)


def folder_prefix(raw: str) -> str:
    """A folder of keys: "" (the top) or a valid key path ending in "/"."""
    body = raw.strip("/")
    return "" if not body else normalize_key(body) + "/"


def key_folder(key: str) -> str:
    """The folder a key is in ("a/b/c" -> "a/b/")."""
    return parent_of(key)
