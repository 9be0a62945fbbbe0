"""The ASGI middleware every HTTP request passes: request id, API key, body limits, logs and metrics.

It works on the raw ASGI ``receive`` stream, so limits hold before any byte is buffered:

* ``Content-Length`` above ``max_upload_bytes`` is refused with 413 before the body is read at all;
* a body without (or with a lying) ``Content-Length`` is counted as it streams in and refused with 413
  as soon as it passes the limit;
* a client that takes longer than ``body_timeout_seconds`` to send its body gets 408 and its connection
  is closed, so a slow or abandoned upload never holds the server.

(Starlette's ``RequestBodyLimitMiddleware`` does the first two, but answers in plain text without the
request id; every refusal here has the JSON body ``{"error", "detail", "request_id"}``.)

After the response it writes one JSON log line (request id, method, path, status, duration, client;
never content) and updates the request counter and latency histogram.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from typing import Any, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import ACCESS_LOGGER
from .metrics import ServeMetrics
from .settings import ServeSettings, env_name

__all__ = ["BodyRejected", "OPEN_PATHS", "RequestContextMiddleware", "error_body", "error_kind_for_status"]

access_log = logging.getLogger(ACCESS_LOGGER)
server_log = logging.getLogger("sound_tf.serve")
#: The detail of a 500 ``internal_error``: a bug of the server's own, logged with its traceback and the request id.
INTERNAL_ERROR_DETAIL = "internal server error; the request id is in the logs"

REQUEST_ID_HEADER = "X-Request-ID"
API_KEY_HEADER = "X-API-Key"
#: Paths answered without an API key: probes and the API documentation (it holds no data).
OPEN_PATHS = frozenset({"/health", "/ready", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
# A client's request id is echoed only if it is short and plain; otherwise a new one is made.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_MAX_LOGGED_PATH = 200

_KIND_BY_STATUS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                   408: "body_timeout", 413: "upload_too_large", 415: "unsupported_format",
                   422: "invalid_parameter", 500: "internal_error", 503: "unavailable"}


def error_kind_for_status(status: int) -> str:
    return _KIND_BY_STATUS.get(status, "http_error")


def error_body(kind: str, detail: str, request_id: str) -> dict[str, str]:
    """The JSON body of every error answer."""
    return {"error": kind, "detail": detail, "request_id": request_id}


class BodyRejected(HTTPException):
    """Raised from ``receive`` when the body is too large (413) or too slow (408).

    It is an ``HTTPException`` so that FastAPI, which turns other errors raised while parsing a body
    into a generic 400, passes it on to the app's exception handler unchanged.
    """

    def __init__(self, status_code: int, kind: str, detail: str):
        super().__init__(status_code=status_code, detail=detail)
        self.kind = kind


class RequestContextMiddleware:
    """Request id, API key, upload size and time limits, one log line and metrics per request."""

    def __init__(self, app: ASGIApp, *, settings: ServeSettings, metrics: ServeMetrics,
                 routes: Sequence[BaseRoute] = ()):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.routes = routes  # the app's routes, to name the endpoint of a request refused before routing
        self._api_key = settings.api_key.get_secret_value().encode() if settings.api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        headers = Headers(scope=scope)
        given_id = headers.get(REQUEST_ID_HEADER.lower(), "")
        request_id = given_id if _REQUEST_ID.match(given_id) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        outcome: dict[str, Any] = {"status": 500, "started": False, "body_bytes": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                outcome["started"] = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        async def refuse(status: int, kind: str, detail: str) -> None:
            state["error_kind"] = kind
            self.metrics.errors.labels(kind=kind).inc()
            response = JSONResponse(error_body(kind, detail, request_id), status_code=status,
                                    headers={"Connection": "close"} if status in (408, 413) else None)
            await response(scope, receive, send_with_id)

        try:
            refusal = self._check_up_front(scope, headers)
            if refusal is not None:
                await refuse(*refusal)
                return
            try:
                await self.app(scope, self._limited_receive(receive, outcome), send_with_id)
            except BodyRejected as exc:  # raised outside FastAPI's body parsing
                if not outcome["started"]:
                    await refuse(exc.status_code, exc.kind, str(exc.detail))
            except Exception:
                server_log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
                if not outcome["started"]:
                    await refuse(500, "internal_error", INTERNAL_ERROR_DETAIL)
        finally:
            self._record(scope, request_id, outcome, began)

    def _check_up_front(self, scope: Scope, headers: Headers) -> tuple[int, str, str] | None:
        """API key and declared body size, before anything is read."""
        path = scope.get("path", "")
        if (self._api_key is not None and path not in OPEN_PATHS and scope.get("method") != "OPTIONS"
                and not hmac.compare_digest(headers.get(API_KEY_HEADER.lower(), "").encode(), self._api_key)):
            given = API_KEY_HEADER.lower() in headers
            return 401, "unauthorized", (f"wrong {API_KEY_HEADER} header" if given
                                         else f"this server needs an API key in the {API_KEY_HEADER} header")
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return 400, "bad_request", f"invalid Content-Length header {length[:40]!r}"
            if declared > self.settings.max_upload_bytes:
                return 413, "upload_too_large", (f"the request body ({declared} bytes) exceeds the upload limit "
                                                 f"of {self.settings.max_upload_bytes} bytes (the server's "
                                                 f"{env_name('max_upload_bytes')})")
        return None

    def _limited_receive(self, receive: Receive, outcome: dict[str, Any]) -> Receive:
        """``receive`` with the byte limit and the body deadline."""
        limit = self.settings.max_upload_bytes
        timeout = self.settings.body_timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        body_done = False

        async def wrapped() -> Message:
            nonlocal body_done
            if body_done:  # after the body only a disconnect can come: no deadline
                return await receive()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                raise BodyRejected(408, "body_timeout", f"the request body did not arrive within {timeout:g} s "
                                                       f"({outcome['body_bytes']} bytes received)") from None
            if message["type"] == "http.request":
                outcome["body_bytes"] += len(message.get("body", b""))
                if outcome["body_bytes"] > limit:
                    raise BodyRejected(413, "upload_too_large", f"the request body exceeds the upload limit of "
                                                                f"{limit} bytes (the server's "
                                                                f"{env_name('max_upload_bytes')})")
                body_done = not message.get("more_body", False)
            return message

        return wrapped

    def _endpoint_of(self, scope: Scope) -> str:
        """The route path a request refused before routing (401, 413 up front) was sent to, else "unmatched"."""
        for route in self.routes:
            matched, _ = route.matches(scope)
            if matched != Match.NONE and isinstance(getattr(route, "path", None), str):
                return route.path
        return "unmatched"

    def _record(self, scope: Scope, request_id: str, outcome: dict[str, Any], began: float) -> None:
        seconds = time.perf_counter() - began
        endpoint = getattr(scope.get("route"), "path", None) or self._endpoint_of(scope)
        status = int(outcome["status"])
        self.metrics.requests.labels(endpoint=endpoint, method=scope.get("method", ""), status=str(status)).inc()
        self.metrics.latency.labels(endpoint=endpoint).observe(seconds)
        client = scope.get("client")
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:_MAX_LOGGED_PATH],
            "status": status,
            "duration_ms": round(seconds * 1000.0, 3),
            "client": client[0] if client else None,
            "body_bytes": outcome["body_bytes"],
        }
        kind = scope.get("state", {}).get("error_kind")
        if kind:
            fields["error"] = kind
        access_log.log(logging.WARNING if status >= 500 else logging.INFO, "request", extra={"fields": fields})
