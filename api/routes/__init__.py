"""Thin route modules: each resource's JSON API and its pages, over shared private helpers.

`render` fills in what every page needs (who is signed in, their navigation, the CSRF secret for
forms); templates live in api/templates and never load anything from another site.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, Response

from api.access import HOME_PAGES, NAVIGATION
from api.deps import Session

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.globals["home_pages"] = HOME_PAGES


def _percent(value: object) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:.0%}" if number >= 0.01 else f"{number:.1%}"


def _signed_points(value: object) -> str:
    """A change of probability in percentage points, in words."""
    if value is None:
        return ""
    points = float(value) * 100
    if abs(points) < 0.05:
        return "unchanged"
    return f"{'up' if points > 0 else 'down'} {abs(points):.1f} percentage points"


def _figure(value: object) -> str:
    """A table figure: whole numbers with thousands separators, others to four decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.4f}"


TEMPLATES.env.filters["percent"] = _percent
TEMPLATES.env.filters["figure"] = _figure
TEMPLATES.env.filters["signed_points"] = _signed_points


def render(
    request: Request,
    name: str,
    *,
    session: Session | None,
    status_code: int = 200,
    **context: object,
) -> Response:
    """A page, with the signed-in user, their navigation and the session's CSRF secret."""
    principal = session.principal if session else None
    # A plain render: no template uses `request` or `url_for`, and Starlette's TemplateResponse
    # would cost three times the render of a household page's layout.
    page = TEMPLATES.get_template(name).render(
        principal=principal,
        navigation=NAVIGATION.get(principal.role, ()) if principal else (),
        csrf_token=session.csrf if session else "",
        path=request.url.path,
        **context,
    )
    # Pages show data about vulnerable people: never keep them in a shared or back-button cache.
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})
