"""The FastAPI app: endpoints, error answers, and the app factory.

Endpoints (documented at ``/docs``):

=========================  =================================================================================
``POST /classify``         multipart field ``file`` (any format, rate, channels); query ``top_k``, ``windows``,
                           ``min_probability``
``POST /classify/``        the same (the original article's path)
``POST /classify/batch``   multipart fields ``files`` (several); one result or error per file; the same query
``GET /labels``            the class list, index = ``predicted_class``
``GET /health``            200 while the process is alive (503 only when the model failed to load)
``GET /ready``             200 once the model is loaded and warmed up, else 503
``GET /metrics``           Prometheus text
=========================  =================================================================================

``windows=true`` adds the per-window timeline (:func:`sound_tf.lite.window_timeline`) and its ``events``
(:func:`sound_tf.lite.window_events`: runs of consecutive windows of one top label, each at ``min_probability``
or more, default :data:`sound_tf.lite.DEFAULT_MIN_PROBABILITY`; the run's silence and other classes are never
events), the fields of ``python -m sound_tf.lite --json``. A ``min_probability`` that is no number from 0 to 1 (``1.5``,
``abc``), or one given without ``windows=true`` (it would change nothing), is a 422 naming it.

Every error answer is JSON ``{"error": kind, "detail": message, "request_id": id}`` and every response
carries the ``X-Request-ID`` header (the client's, when it sent a plain one, else a new one).
"""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping, Sequence

from fastapi import FastAPI, File, Query, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from python_multipart import multipart as python_multipart
from python_multipart.exceptions import FormParserError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ConfigError
from ..lite import DEFAULT_MIN_PROBABILITY, check_min_probability
from .backends import Backend, resolve_backend
from .logs import configure_logging
from .metrics import CONTENT_TYPE_LATEST, ServeMetrics
from .middleware import (API_KEY_HEADER, INTERNAL_ERROR_DETAIL, BodyRejected, RequestContextMiddleware, error_body,
                         error_kind_for_status, server_log)
from .schemas import (BatchResponse, ClassifyResponse, ErrorResponse, HealthResponse, LabelsResponse,
                      ReadyResponse)
from .service import ClassifierService, ServeError, safe_filename
from .settings import ServeSettings, env_name

__all__ = ["create_app", "create_app_from_env"]

DESCRIPTION = f"""Sound classification with a model trained by `sound_tf`.

Upload a recording (WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF or AU; any sample rate and channel count)
as the multipart field `file`:

    curl -F file=@dog.wav 'http://127.0.0.1:8000/classify?top_k=3'

Recordings longer than the model's clip are scored over sliding windows; `windows=true` adds the
per-window timeline and its `events`, what was heard when: runs of consecutive windows of one top label, each at
`min_probability` or more (default {DEFAULT_MIN_PROBABILITY}), the model's silence and other classes left out:

    curl -F file=@street.wav 'http://127.0.0.1:8000/classify?windows=true&min_probability=0.8'

Errors are JSON `{{"error", "detail", "request_id"}}`.
"""

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in {
        401: "Missing or wrong X-API-Key (only when the server has an API key).",
        408: "The request body did not arrive in time.",
        413: "Upload over the size limit, audio over the duration limit, too many files, or a multipart part "
             "header over the parser's limit (a file name of thousands of characters).",
        415: "Not an audio format the server reads.",
        422: "Missing field, bad parameter, empty, truncated, corrupt or NaN audio.",
        503: "Model not ready, overloaded or too slow.",
    }.items()
}


def _checked_min_probability(value: Any) -> float:
    """The ``min_probability`` query parameter's ``value`` as a number in [0, 1]
    (:func:`sound_tf.lite.check_min_probability`).

    Raises
    ------
    ServeError
        422 ``invalid_parameter`` naming the parameter, the value given and the range: one outside [0, 1], and one
        that is no number (FastAPI's validation refuses it first; :func:`_validation_detail` words it so).
    """
    try:
        return check_min_probability(value, name="min_probability")
    except ConfigError as exc:
        raise ServeError(422, "invalid_parameter", f"query parameter {exc}") from None


def _events_threshold(min_probability: float | None, *, windows: bool) -> float:
    """The ``min_probability`` query parameter as the events' threshold (:data:`DEFAULT_MIN_PROBABILITY` when it is
    not given), checked as ``lite`` and ``predict`` check theirs (:func:`sound_tf.lite.check_min_probability`).

    Raises
    ------
    ServeError
        422 ``invalid_parameter``: the value is not in [0, 1], or it is given without ``windows=true`` (it would
        change nothing in the answer; ``predict --min-probability`` without ``--windows`` is refused alike).
    """
    if min_probability is None:
        return DEFAULT_MIN_PROBABILITY
    threshold = _checked_min_probability(min_probability)
    if not windows:
        raise ServeError(422, "invalid_parameter", f"min_probability={threshold:g} sets the events of a windowed "
                                                   "answer: add windows=true")
    return threshold


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_response(request: Request, status: int, kind: str, detail: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A JSON error answer (with ``headers``, e.g. a 405's ``Allow``); counts the error kind and notes it
    for the request's log line."""
    request.state.error_kind = kind
    request.app.state.metrics.errors.labels(kind=kind).inc()
    return JSONResponse(error_body(kind, detail, _request_id(request)), status_code=status,
                        headers={**(headers or {}), **({"Connection": "close"} if status in (408, 413) else {})})


#: The characters of a refused query value a 422 shows (a long one is cut: the answer does not echo it whole).
_SHOWN_INPUT_CHARACTERS = 60

_OTHER_ENDPOINT_FIELD = {"file": ("files", "/classify/batch"), "files": ("file", "/classify")}


def _validation_detail(exc: RequestValidationError, content_type: str = "",
                       parts: Sequence[str] = ()) -> tuple[str, str]:
    """``(kind, detail)`` for FastAPI's validation errors, in words a client can act on; ``content_type`` is
    the request's, named when it explains a missing field, and ``parts`` the names of the multipart body's
    parts, named when none is the field asked for (``curl -F upload=@a.wav`` was told only that 'file' is
    missing)."""
    missing = [err for err in exc.errors() if err.get("type") == "missing"]
    if missing:
        names = [str(err["loc"][-1]) for err in missing]
        fields = ", ".join(repr(name) for name in names)
        media = content_type.split(";")[0].strip().lower()
        given = list(dict.fromkeys(parts))
        if media == "multipart/form-data" and given:
            shown = ", ".join(repr(name[:40]) for name in given[:5]) + (", ..." if len(given) > 5 else "")
            why = f"the multipart body's {'part is' if len(given) == 1 else 'parts are'} named {shown}"
            for name in names:
                other, endpoint = _OTHER_ENDPOINT_FIELD.get(name, ("", ""))
                if other in given:
                    why += f" ('{other}' is the field of {endpoint})"
        elif media == "multipart/form-data":
            # python-multipart reads a body cut off before its closing boundary as one without parts
            why = "the multipart body holds no such part (or it is incomplete: it must end with its closing boundary)"
        elif media:
            why = f"the body was sent as {media[:80]}, not as multipart/form-data"
        else:
            why = "the request has no multipart/form-data body"
        return "missing_field", (f"missing form field {fields}: {why}; send the audio as a file in a "
                                 "multipart/form-data body, e.g. curl -F file=@clip.wav (or -F files=@a.wav "
                                 "-F files=@b.wav for /classify/batch)")
    not_files = [err for err in exc.errors() if "UploadFile" in str(err.get("msg", ""))]
    if not_files:  # a multipart part without a filename (or a urlencoded field) arrives as text
        fields = ", ".join(sorted({repr(str(err["loc"][1] if len(err["loc"]) > 1 else err["loc"][-1]))
                                   for err in not_files}))
        return "missing_field", (f"form field {fields} arrived as text, not as a file (a multipart part without "
                                 "a filename is text): send the audio as a file, e.g. curl -F file=@clip.wav "
                                 "(or -F files=@a.wav -F files=@b.wav for /classify/batch)")
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        given = err.get("input")
        if tuple(err.get("loc", ())) == ("query", "min_probability") and isinstance(given, str):
            # no number ('abc'): in the words of a value outside [0, 1], not "Input should be a valid number" without
            # the range; a value cut short ends in '...', which no cut can turn into a number
            cut = given if len(given) <= _SHOWN_INPUT_CHARACTERS else given[:_SHOWN_INPUT_CHARACTERS] + "..."
            try:
                _checked_min_probability(cut)
            except ServeError as refused:
                parts.append(refused.detail)
                continue
        shown = ("" if given is None or isinstance(given, (bytes, dict))
                 else f" (got {str(given)[:_SHOWN_INPUT_CHARACTERS]!r})")
        parts.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return "invalid_parameter", "; ".join(parts) or "invalid request"


def _multipart_problem(exc: BaseException) -> tuple[int, str, str] | None:
    """``(status, kind, detail)`` for a multipart body python-multipart refused, else ``None``.

    Starlette answers every such body with a 400 "Invalid multipart data.", the parser's own reason left in
    the exception chain (the ``HTTPException`` is raised while its ``MultiPartException`` is handled, which
    was raised from the parser's error). A part header line over the parser's limit (a file name of thousands
    of characters) or more header lines in a part than it takes is a limit (413); the limits stay as they are.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen and not isinstance(cause, FormParserError):
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, FormParserError):
        return None
    reason = str(cause)
    if reason == "Maximum header size exceeded":
        limit = getattr(python_multipart, "DEFAULT_MAX_HEADER_SIZE", None)
        return 413, "part_header_too_large", (
            f"a part of the multipart body has a header line longer than {f'{limit} bytes, ' if limit else ''}the "
            "limit of the server's multipart parser (python-multipart): a file name of thousands of characters? "
            "send the file under a shorter name")
    if reason == "Maximum header count exceeded":
        limit = getattr(python_multipart, "DEFAULT_MAX_HEADER_COUNT", None)
        return 413, "too_many_part_headers", (
            f"a part of the multipart body has more header lines than the server's multipart parser "
            f"(python-multipart) takes{f' ({limit})' if limit else ''}; send each file with its Content-Disposition "
            "and Content-Type only")
    return 400, "bad_request", f"invalid multipart/form-data body (python-multipart: {_with_characters(reason[:200])})"


def _with_characters(reason: str) -> str:
    """python-multipart's reason with the character beside each byte code it names (``character 32`` is
    ``character ' ' (32)``, ``character 88, got 81`` is ``character 'X' (88), got 'Q' (81)``): the codes alone had
    to be looked up."""
    def shown(found: re.Match[str]) -> str:
        code = int(found[2])
        return f"{found[1]}{chr(code)!r} ({code})" if code < 256 else found[0]  # a byte: repr shows CR as "\\r"

    return re.sub(r"(character |got |found )(\d+)\b", shown, reason)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def on_serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return error_response(request, exc.status, exc.kind, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        parts: list[str] = []
        if content_type.split(";")[0].strip().lower() == "multipart/form-data":
            try:  # the form FastAPI has parsed already (Starlette keeps it), to name the parts that came
                parts = list((await request.form()).keys())
            except Exception:  # noqa: BLE001 - a body that does not parse names no parts
                parts = []
        kind, detail = _validation_detail(exc, content_type, parts)
        return error_response(request, 422, kind, detail)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = exc.kind if isinstance(exc, BodyRejected) else error_kind_for_status(exc.status_code)
        status, detail = exc.status_code, str(exc.detail)
        if exc.status_code == 404:
            detail = f"no endpoint {request.method} {request.url.path[:200]}; see /docs"
        elif exc.status_code == 400:
            status, kind, detail = _multipart_problem(exc) or (status, kind, detail)
        return error_response(request, status, kind, detail, exc.headers)


def create_app(settings: ServeSettings, *, backend: Backend | None = None) -> FastAPI:
    """Build the app for ``settings``; the model loads in the background when the app starts.

    Parameters
    ----------
    settings : ServeSettings
    backend : Backend, optional
        Serve this already loaded backend instead of loading ``settings.model_dir`` (tests).

    Raises
    ------
    sound_tf.errors.ConfigError
        ``settings`` is not a :class:`ServeSettings` or ``backend`` not a :class:`Backend`;
        ``settings.model_dir`` is not a run folder or bundle with the files the backend needs (checked
        now, so a wrong path fails at start instead of leaving a server that never gets ready).
    """
    if not isinstance(settings, ServeSettings):  # a path or dict failed later: "'str' object has no attribute ..."
        raise ConfigError(f"create_app takes ServeSettings, e.g. create_app(ServeSettings(model_dir=...)), "
                          f"got {type(settings).__name__} {settings!r:.80}")
    if backend is not None and not isinstance(backend, Backend):  # the model would fail to load, the app never ready
        raise ConfigError(f"backend must be a loaded Backend (sound_tf.serve.backends.load_backend), got "
                          f"{type(backend).__name__} {backend!r:.80}; choose the kind with ServeSettings(backend=...)")
    if backend is None:
        resolve_backend(settings.model_dir, settings.backend, tflite_variant=settings.tflite_variant)
    metrics = ServeMetrics()
    service = ClassifierService(settings, metrics, backend)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()
            metrics.close()

    app = FastAPI(title="sound_tf", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = service
    _install_error_handlers(app)

    # The middleware enforces the key before any body is read; this only shows it in /docs.
    api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                                  description="Needed when the server runs with SOUND_TF_API_KEY.")
    protected = [Security(api_key_scheme)] if settings.api_key is not None else []

    top_k_query = Query(None, ge=1, description=f"How many labels to return (default {settings.default_top_k}; "
                                                "capped at the number of classes).")
    windows_query = Query(False, description="Add the per-window timeline of a long recording and its `events` "
                                             "(what was heard when).")
    min_probability_query = Query(None, description=f"With `windows=true`: the top probability a window needs to be "
                                                    f"part of an event, from 0 to 1 (default "
                                                    f"{DEFAULT_MIN_PROBABILITY}).")

    async def classify(request: Request,
                       file: UploadFile = File(..., description="The recording (any format, rate and channels)."),
                       top_k: int | None = top_k_query, windows: bool = windows_query,
                       min_probability: float | None = min_probability_query) -> dict[str, Any]:
        """Classify one uploaded recording."""
        threshold = _events_threshold(min_probability, windows=windows)
        parts = len((await request.form()).getlist("file"))  # the form FastAPI has parsed already
        if parts > 1:  # FastAPI would take the last one and drop the others without a word
            raise ServeError(422, "invalid_parameter", f"{parts} parts named 'file' in one request: /classify takes "
                                                       "one recording; send several as 'files' to /classify/batch")
        data = await file.read()
        result = await service.classify(data, filename=file.filename, top_k=top_k or settings.default_top_k,
                                        with_windows=windows, min_probability=threshold)
        result["request_id"] = _request_id(request)
        return result

    for path, name in (("/classify", "classify"), ("/classify/", "classify_article_path")):
        app.add_api_route(path, classify, methods=["POST"], response_model=ClassifyResponse,
                          response_model_exclude_none=True, responses=_ERROR_RESPONSES, dependencies=protected,
                          name=name, operation_id=name,
                          summary="Classify a recording" + (" (the article's path)" if path.endswith("/") else ""))

    @app.post("/classify/batch", response_model=BatchResponse, response_model_exclude_none=True,
              responses=_ERROR_RESPONSES, dependencies=protected, summary="Classify several recordings")
    async def classify_batch(request: Request,
                             files: list[UploadFile] = File(..., description="Several recordings."),
                             top_k: int | None = top_k_query, windows: bool = windows_query,
                             min_probability: float | None = min_probability_query) -> dict[str, Any]:
        """Classify several uploaded recordings; a bad file fails only its own entry."""
        began = time.perf_counter()
        threshold = _events_threshold(min_probability, windows=windows)
        if len(files) > settings.max_files_per_request:
            raise ServeError(413, "too_many_files", f"{len(files)} files in one request; the limit is "
                                                    f"{settings.max_files_per_request} (the server's "
                                                    f"{env_name('max_files_per_request')})")
        service.require_ready()

        async def one(upload: UploadFile) -> dict[str, Any]:
            try:
                return await service.classify(await upload.read(), filename=upload.filename,
                                              top_k=top_k or settings.default_top_k, with_windows=windows,
                                              min_probability=threshold)
            except ServeError as exc:
                metrics.errors.labels(kind=exc.kind).inc()
                return {"filename": safe_filename(upload.filename), "error": exc.kind, "detail": exc.detail,
                        "status": exc.status}
            except Exception:  # a bug of the server's own: this entry is a 500, the other files keep their answers
                server_log.exception("unhandled error", extra={"fields": {"request_id": _request_id(request),
                                                                          "filename": safe_filename(upload.filename)}})
                metrics.errors.labels(kind="internal_error").inc()
                return {"filename": safe_filename(upload.filename), "error": "internal_error",
                        "detail": INTERNAL_ERROR_DETAIL, "status": 500}

        results = await asyncio.gather(*(one(f) for f in files))
        failed = sum(1 for r in results if "error" in r)
        return {"results": results, "succeeded": len(results) - failed, "failed": failed,
                "processing_ms": round((time.perf_counter() - began) * 1000.0, 3),
                "request_id": _request_id(request)}

    @app.get("/labels", response_model=LabelsResponse, dependencies=protected, summary="The class labels")
    async def labels() -> dict[str, Any]:
        """The labels in model order: ``predicted_class`` is an index into this list."""
        backend_ = service.require_ready()
        return {"labels": list(backend_.labels), "num_classes": backend_.num_classes}

    @app.get("/health", response_model=HealthResponse, summary="Liveness",
             responses={503: {"model": HealthResponse, "description": "The model failed to load."}})
    async def health() -> JSONResponse:
        """200 while the process serves requests; 503 only when the model failed to load."""
        failed = service.state == "failed"
        return JSONResponse({"status": "failed" if failed else "ok", "model": service.state},
                            status_code=503 if failed else 200)

    @app.get("/ready", response_model=ReadyResponse, summary="Readiness",
             responses={503: {"model": ReadyResponse, "description": "Loading, failed or stopped."}})
    async def ready() -> JSONResponse:
        """200 once the model is loaded and warmed up (route traffic here only then), else 503."""
        body: dict[str, Any] = {"status": service.state, **service.describe()}
        if service.error:
            body["detail"] = service.error
        return JSONResponse(body, status_code=200 if service.ready else 503)

    for path, probe in (("/health", health), ("/ready", ready)):  # uptime checkers send HEAD
        app.add_api_route(path, probe, methods=["HEAD"], include_in_schema=False)

    @app.get("/metrics", dependencies=protected, summary="Prometheus metrics",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics_endpoint() -> Response:
        """Requests by endpoint and status, latency, inference batch sizes, errors by kind, queue depth."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestContextMiddleware, settings=settings, metrics=metrics, routes=app.router.routes)
    if settings.cors_origins:  # added last, so it is outermost and answers preflights itself
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "X-Request-ID", "Content-Type"],
                           expose_headers=["X-Request-ID"])
    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``--workers N``: settings from ``SOUND_TF_*`` variables."""
    settings = ServeSettings()
    configure_logging(settings.log_level)
    return create_app(settings)
