"""Who may use a ``parsner serve`` server: credentials on every route that reads or changes anything, and no
cross-site requests.

One secret, the *token*, opens the server in three ways, each compared in constant time:

* ``Authorization: Bearer TOKEN``: the plain API (``POST /v1/ner``, scripts, curl);
* ``Authorization: Basic base64(USER:TOKEN)``: what Label Studio sends when its *Connect model* form has basic
  authentication on (user ``parsner`` unless the operator names another);
* a cookie, set by opening ``/?token=TOKEN`` once (as Jupyter does): the page at ``/`` and its requests. Its
  name carries a hash of the token, so two servers on one host do not overwrite each other's cookie; it is
  ``HttpOnly`` and ``SameSite=Strict``, so no other site's page can send it.

``GET /health`` and ``GET /label-studio/health`` stay open (Label Studio and load balancers probe them) and say
only up/down and the model version to a caller without credentials.

Before credentials are even looked at, two rules stop a hostile web page from using a server on the annotator's
own machine (a browser sends "simple" cross-site POSTs without asking first):

* a request whose ``Origin`` is neither the server's own (scheme and ``Host``) nor one the operator allowed is
  refused (403);
* a body is read only when it is declared ``application/json`` (415 otherwise): a browser cannot send that
  type cross-site without a preflight, which this server never answers.

With no token configured the server makes one at start and prints how to use it; only an explicit ``--no-auth``
turns all of this off (the origin and content-type rules stay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

#: Routes any caller may probe; they answer only up/down and the model version without credentials.
OPEN_ROUTES = frozenset({("GET", "/health"), ("GET", "/label-studio/health"), ("HEAD", "/health")})
#: Label Studio's "Connect model" form sends this user name unless the operator sets another.
DEFAULT_USER = "parsner"
#: Shorter tokens are refused: 16 characters of a random token are ~96 bits.
MIN_TOKEN_CHARS = 16
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


@dataclass(frozen=True)
class ServerAuth:
    """The server's credentials and the origins it accepts besides its own. ``token=None``: authentication off."""

    token: str | None
    user: str = DEFAULT_USER
    allowed_origins: tuple[str, ...] = ()
    generated: bool = field(default=False, compare=False)  # made at start, to be printed

    @classmethod
    def generate(cls, user: str = DEFAULT_USER, allowed_origins: tuple[str, ...] = ()) -> ServerAuth:
        return cls(secrets.token_urlsafe(32), user, allowed_origins, generated=True)

    @classmethod
    def off(cls, allowed_origins: tuple[str, ...] = ()) -> ServerAuth:
        return cls(None, DEFAULT_USER, allowed_origins)

    def __post_init__(self) -> None:
        if self.token is not None and (len(self.token) < MIN_TOKEN_CHARS or not self.token.isprintable()
                                       or any(c.isspace() for c in self.token)):
            raise ValueError(f"the token must be at least {MIN_TOKEN_CHARS} printable characters without spaces")
        if ":" in self.user or not self.user:
            raise ValueError("the basic-auth user name must be non-empty and hold no ':'")

    @property
    def enabled(self) -> bool:
        return self.token is not None

    @property
    def cookie_name(self) -> str:
        digest = hashlib.sha256((self.token or "").encode()).hexdigest()[:12]
        return f"parsner_{digest}"

    def accepts(self, headers: dict[str, str]) -> bool:
        """Whether these request headers (lower-case names) carry this server's credentials."""
        if self.token is None:
            return True
        want = self.token.encode()
        scheme, _, value = headers.get("authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.encode(), want)
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            user_ok = hmac.compare_digest(user.encode(), self.user.encode())
            return hmac.compare_digest(password.encode(), want) and user_ok
        cookie = _cookies(headers.get("cookie", "")).get(self.cookie_name)
        return cookie is not None and hmac.compare_digest(cookie.encode(), want)

    def usage(self, base_url: str) -> str:
        """How to use this server (one with a token), for the operator's terminal: it holds the token."""
        return (f"page: {base_url}?token={self.token}\n"
                f"  API: send the header 'Authorization: Bearer {self.token}'\n"
                f"  Label Studio (Connect model, basic auth): user {self.user}, password {self.token}")


def _cookies(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            out.setdefault(name, value)
    return out


def is_authenticated(request: Any) -> bool:
    """Whether ``request`` (a Starlette request) carried valid credentials; True when authentication is off."""
    return bool(request.scope.get("parsner_authenticated", False))


def own_origins(scope: Scope, headers: dict[str, str]) -> set[str]:
    """The origins a page served by this server sends: its scheme and the Host it was reached by."""
    host = headers.get("host", "")
    scheme = scope.get("scheme", "http")
    return {f"{scheme}://{host}"} if host else set()


class AuthMiddleware:
    """ASGI middleware applying :class:`ServerAuth` to every HTTP request before any route sees it."""

    def __init__(self, app: ASGIApp, auth: ServerAuth) -> None:
        self.app, self.auth = app, auth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method, path = scope["method"], scope["path"]
        refusal = self._refusal(scope, headers, method)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        ok = self.auth.accepts(headers)
        scope["parsner_authenticated"] = ok
        if method == "GET" and path == "/" and self.auth.token is not None:
            token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if token:
                await self._login(send, token)
                return
        if not ok and (method, path) not in OPEN_ROUTES:
            await _send_error(send, 401, "unauthorized", "credentials required: 'Authorization: Bearer TOKEN', "
                              "basic auth, or open the page URL that parsner serve printed",
                              [(b"www-authenticate", b'Basic realm="parsner", charset="UTF-8"')])
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str], method: str) -> tuple[int, str, str] | None:
        origin = headers.get("origin")
        if origin is not None and origin not in own_origins(scope, headers) | set(self.auth.allowed_origins):
            return 403, "cross_origin", "requests from another site's page are refused (see --allow-origin)"
        if method in _BODY_METHODS:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return 415, "unsupported_media_type", "send the body as Content-Type: application/json"
        return None

    async def _login(self, send: Any, token: str) -> None:
        """``/?token=T``: a good token sets the cookie and sends the browser to ``/`` (the token leaves the URL)."""
        if not hmac.compare_digest(token.encode(), (self.auth.token or "").encode()):
            await _send_error(send, 401, "unauthorized", "wrong token")
            return
        cookie = f"{self.auth.cookie_name}={self.auth.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode()),
                                (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


async def _send_error(send: Any, status: int, code: str, message: str,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
