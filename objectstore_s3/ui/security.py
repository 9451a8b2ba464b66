"""The console's guard: every request is checked here before any page is made.

- The Host header must name the address the console listens on (a DNS-rebinding page
  on another name is refused).
- The URL printed at start carries a random token; the first visit exchanges it for an
  HttpOnly, SameSite=Strict cookie (as Jupyter does) and is redirected to the same page
  without it. Every other request needs the cookie.
- Only GET, HEAD and POST exist; a POST must come from the console's own origin (Origin
  and Sec-Fetch-Site, when the browser sends them) and carry the CSRF token (checked by
  `check_csrf` in the POST's handler, which reads the form or the X-CSRF-Token header).
- Every response carries a strict Content-Security-Policy (only the package's own script,
  style and images), `X-Content-Type-Options: nosniff`, no referrer beyond the console, no
  framing, no cache.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "Guard", "GuardMiddleware", "check_csrf"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make form POSTs Origin: null
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
NEEDS_LINK = (
    "This console needs the link that `objectstore-s3 ui` printed when it started (the "
    "link carries a token). Open that link, or start the console again for a new one.\n"
)


class Guard:
    """The console's secrets (made at start, never logged) and the names it answers to."""

    def __init__(self, port: int, hosts: Iterable[str] = ()) -> None:
        self.port = port
        self.token = secrets.token_urlsafe(32)  # in the printed URL, exchanged once
        self.session = secrets.token_urlsafe(32)  # the cookie's value
        self.csrf = secrets.token_urlsafe(32)  # in each page's forms
        names = {"127.0.0.1", "localhost", "[::1]", *hosts}
        self.hosts = {f"{name}:{port}" for name in names}
        self.cookie = f"objectstore_console_{port}"  # cookies are shared across ports

    def __repr__(self) -> str:
        return f"Guard(port={self.port})"  # the tokens never show

    def url(self, host: str = "127.0.0.1") -> str:
        """The URL to open: the console's address with its token."""
        return f"http://{host}:{self.port}/?{urlencode({'token': self.token})}"

    def knows(self, presented: str | None, secret: str) -> bool:
        return presented is not None and secrets.compare_digest(presented.encode(), secret.encode())


class GuardMiddleware:
    """The checks above, around the whole console (a plain ASGI middleware)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send_guarded)
            return
        await self.app(scope, receive, send_guarded)

    def _refusal(self, request: Request) -> Response | None:
        guard = self.guard
        host = request.headers.get("host", "")
        if host not in guard.hosts:
            return PlainTextResponse(f"unknown host {host!r}: open the console's own URL\n", 400)
        if request.method not in ("GET", "HEAD", "POST"):
            return PlainTextResponse("method not allowed\n", 405)
        token = request.query_params.get("token")
        if token is not None:
            if not guard.knows(token, guard.token):
                return PlainTextResponse(NEEDS_LINK, 403)
            return self._exchange(request)
        if not guard.knows(request.cookies.get(guard.cookie), guard.session):
            return PlainTextResponse(NEEDS_LINK, 403)
        if request.method == "POST":
            origin = request.headers.get("origin")
            site = request.headers.get("sec-fetch-site")
            if (origin is not None and origin != f"http://{host}") or site not in (
                None,
                "same-origin",
            ):
                return PlainTextResponse("refused: the request came from another site\n", 403)
        return None

    def _exchange(self, request: Request) -> Response:
        """The token for the cookie, and the same page without the token in its URL."""
        query = [
            (name, value) for name, value in request.query_params.multi_items() if name != "token"
        ]
        target = URL(path=request.url.path, query=urlencode(query))
        response = RedirectResponse(str(target), status_code=303)
        response.set_cookie(
            self.guard.cookie,
            self.guard.session,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response


async def check_csrf(request: Request, guard: Guard) -> dict[str, str]:
    """The POST's form fields, once its CSRF token (form field `csrf` or header
    X-CSRF-Token) is the console's; PermissionError otherwise."""
    fields: dict[str, str] = {}
    presented = request.headers.get("x-csrf-token")
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        presented = presented or fields.get("csrf")
    if not guard.knows(presented, guard.csrf):
        raise PermissionError("refused: the form is stale or from elsewhere (CSRF check)")
    return fields
