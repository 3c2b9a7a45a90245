"""The web service: a JSON API (documented at /docs) and server-rendered pages, behind roles.

`create_app(settings)` builds it; `serve(settings)` runs it with uvicorn (`rebalance serve`).
Nothing is fetched from another site: templates, CSS and the API reference are all local.

Errors are answered in the caller's language: JSON `{"detail": ...}` under /api/, a calm page
elsewhere. Bad input is a 422 naming the field; a refusal is 401, 403 or 404 (see api.access);
a lost race is 409. An unexpected failure is logged without request data and answered with a
plain 500 that reveals nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import auth
from api.access import AccessRefused
from api.audit import AuditUnavailable
from api.database import ConflictError
from api.deps import CsrfRefused, NotSignedIn, session_from_cookie
from api.routes import admin, docs, households, models, programme, proposals, render, session
from api.routes._proposals import RuleBroken
from api.settings import Settings, load_settings
from api.state import ServiceState
from api.week import NoWeekYet

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DESCRIPTION = """Early help prioritisation and key-worker allocation.

Sign in with `POST /api/token` (form fields `username`, `password`) and send the token as
`Authorization: Bearer <token>`. What you can see depends on your role: key workers their own
caseload, locality managers their locality, data scientists the models, administrators the users
and the audit log. Every read of household records and every decision is audited.
"""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
TAGS = [
    {"name": "sign in", "description": "Tokens for the API."},
    {"name": "households", "description": "Household records, caseloads and locality lists."},
    {"name": "proposals", "description": "Weekly allocation proposals and decisions."},
    {"name": "models", "description": "Model versions, metrics, fairness and features."},
    {"name": "administration", "description": "Users and the audit log."},
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (a plain ASGI middleware: Starlette's
    BaseHTTPMiddleware would cost a task and a stream copy per request)."""

    def __init__(self, app) -> None:
        self.app = app
        self.headers = [
            (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
        ]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [header for header in self.headers if header[0] not in present]
                message = message | {"headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _session_or_none(request: Request):
    return session_from_cookie(request, request.app.state.service.db)


def _answer(request: Request, status_code: int, message: str, *, headers=None) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status_code, headers=headers)
    response = render(
        request,
        "error.html",
        session=_session_or_none(request),
        status_code=status_code,
        message=message,
    )
    response.headers.update(headers or {})
    return response


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ()) if part not in ("body",)]
        field = ".".join(
            location[1:] if location[:1] in (["query"], ["path"], ["form"]) else location
        )
        parts.append(f"{field or 'request'}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def not_signed_in(request: Request, _: NotSignedIn) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"detail": "Sign in first: POST /api/token, then send Authorization: Bearer."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)


def wrong_credentials(request: Request, _: auth.WrongCredentials) -> Response:
    return JSONResponse(
        {"detail": "That username and password do not match an account."},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def throttled(request: Request, error: auth.SignInThrottled) -> Response:
    headers = {"Retry-After": str(error.retry_after)}
    message = f"Too many failed sign-ins. Try again in {error.retry_after} seconds."
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=429, headers=headers)
    response = session.sign_in_page(request, status_code=429, error=message)
    response.headers.update(headers)
    return response


def csrf_refused(request: Request, _: CsrfRefused) -> Response:
    message = "This form had expired or did not come from this site. Reload and try again."
    return _answer(request, 403, message)


def refused(request: Request, error: AccessRefused) -> Response:
    return _answer(request, error.status_code, error.message)


def no_week(request: Request, error: NoWeekYet) -> Response:
    return _answer(request, 503, str(error))


def rule_broken(request: Request, error: RuleBroken) -> Response:
    return _answer(request, 422, f"{error.field}: {error.message}")


def conflict(request: Request, error: ConflictError) -> Response:
    return _answer(request, 409, str(error))


def audit_unavailable(request: Request, error: AuditUnavailable) -> Response:
    return _answer(request, 503, str(error))


def invalid(request: Request, error: RequestValidationError) -> Response:
    return _answer(request, 422, _validation_message(error))


def http_error(request: Request, error: StarletteHTTPException) -> Response:
    message = error.detail if isinstance(error.detail, str) else "request refused"
    if error.status_code == 404:
        message = "There is nothing at this address."
    return _answer(request, error.status_code, message, headers=error.headers)


def unexpected(request: Request, error: Exception) -> Response:
    # The type only: a message could carry request data.
    logger.error("unexpected %s on %s %s", type(error).__name__, request.method, request.url.path)
    return _answer(request, 500, "Something went wrong on our side; it has been logged.")


ERROR_HANDLERS = {
    NotSignedIn: not_signed_in,
    auth.WrongCredentials: wrong_credentials,
    auth.SignInThrottled: throttled,
    CsrfRefused: csrf_refused,
    AccessRefused: refused,
    NoWeekYet: no_week,
    RuleBroken: rule_broken,
    ConflictError: conflict,
    AuditUnavailable: audit_unavailable,
    RequestValidationError: invalid,
    StarletteHTTPException: http_error,
    Exception: unexpected,
}


def _install_error_handlers(app: FastAPI) -> None:
    for kind, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(kind, handler)


@contextlib.asynccontextmanager
async def _load_week_at_start(app: FastAPI) -> AsyncIterator[None]:
    """Start loading the week as the server starts (in the background: the sign-in page and
    the API answer meanwhile), so that the first household read does not wait 5-10 s for it."""

    def load() -> None:
        # NoWeekYet and an unreadable run are answered (503) and logged when a request asks.
        with contextlib.suppress(NoWeekYet):
            app.state.service.weeks.current()

    threading.Thread(target=load, name="week-loader", daemon=True).start()
    yield


def create_app(
    settings: Settings | None = None,
    *,
    throttle: auth.ThrottlePolicy | None = None,
    household_fast_path: bool = True,
) -> FastAPI:
    """The service over REBALANCE_HOME (settings default: from the environment).
    `household_fast_path=False` leaves out the HouseholdReads middleware (measured by
    bench/bench_service.py --fast-path)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="Rebalance",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
        lifespan=_load_week_at_start,
    )
    app.state.service = ServiceState(settings, throttle=throttle)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (session, households, proposals, models, programme, admin, docs):
        app.include_router(module.router)
    _install_error_handlers(app)
    # Added first, so it runs inside SecurityHeaders: its answers get the same headers.
    if household_fast_path:
        app.add_middleware(households.HouseholdReads)
    app.add_middleware(SecurityHeaders)
    return app


def app_from_environment() -> FastAPI:
    """The app over the settings in the environment (how each of several workers builds it)."""
    return create_app(load_settings())


def serve(
    settings: Settings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
) -> None:
    """Run the service until interrupted (`rebalance serve`).

    `workers` > 1 runs that many processes on one socket, each with the week in memory (about
    1.4 GB each for a 110,000-household city) and its own audit writer; they share service.db,
    whose write lock keeps one audit chain in commit order. One worker uses one core at most.
    """
    settings = settings or load_settings()
    options = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
    }
    if workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Each worker process builds its own app from the environment: pass the settings there.
    os.environ["REBALANCE_HOME"] = str(settings.home)
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    uvicorn.run("api.app:app_from_environment", factory=True, workers=workers, **options)
