"""Thin route modules: each resource's JSON API and its pages, over shared private helpers.

`render` fills in what every page needs (who is signed in, their navigation, the CSRF secret for
forms); templates live in api/templates and never load anything from another site.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import HTMLResponse, Response

from api.access import NAVIGATION
from api.deps import Session
from api.pages import TEMPLATES


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
