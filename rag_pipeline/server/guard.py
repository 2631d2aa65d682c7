"""The request guard: authenticate and cap the body before any route reads a byte of it."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from rag_pipeline.errors import AuthError
from rag_pipeline.server.auth import user_for_token

# Everything else needs a signed-in user; a test checks this against the OpenAPI document
# (operations without a security requirement), so a new public route cannot be forgotten.
PUBLIC_PATHS = frozenset(
    {"/health", "/api/v1/auths/signup", "/api/v1/auths/signin", "/openapi.json", "/docs"}
)
# Routes whose body is a file upload: capped by the file limit, not the request limit.
UPLOAD_PATHS = frozenset({"/api/v1/files/", "/process"})
# Bodies that grow with a knowledge base (a sync manifest names each of its files).
KNOWLEDGE_PREFIX = "/api/v1/knowledge/"
MANIFEST_SUFFIXES = ("/sync/diff", "/sync/cleanup")
# Room for the multipart framing around an upload of the largest allowed file.
_MULTIPART_OVERHEAD = 64 * 1024


def _unauthorized(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


class RequestGuard:
    """ASGI middleware in front of the routes.

    FastAPI reads (and Starlette spools) a request body before it runs a route's
    dependencies, so the ``current_user`` dependency alone let anonymous clients make the
    server hold hundreds of megabytes. This guard checks the Bearer token from the headers
    first (leaving the user in the request state for the dependency), then caps the body
    while it streams in with Starlette's own limiter (413): at the file limit for uploads,
    at the manifest limit for a knowledge base's sync, at the request limit elsewhere.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        path = scope["path"]
        if path not in PUBLIC_PATHS:
            answer = await self._authenticate(scope, state)
            if answer is not None:
                await answer(scope, receive, send)
                return
        settings = state.settings
        if path in UPLOAD_PATHS:
            limit = settings.max_file_bytes + _MULTIPART_OVERHEAD
        elif path.startswith(KNOWLEDGE_PREFIX) and path.endswith(MANIFEST_SUFFIXES):
            limit = settings.max_manifest_bytes
        else:
            limit = settings.max_request_bytes
        await RequestBodyLimitMiddleware(self.app, max_body_size=limit)(scope, receive, send)

    async def _authenticate(self, scope: Scope, state: Any) -> JSONResponse | None:
        header = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("Not authenticated")
        try:
            user, method = await anyio.to_thread.run_sync(
                user_for_token, state.db, state.tokens, token
            )
        except AuthError:
            return _unauthorized("Invalid token or API key")
        request_state = scope.setdefault("state", {})
        request_state["user"], request_state["auth_method"] = user, method
        return None
