"""Model pages for data scientists: the JSON API and the page (logic in _models)."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from api import access
from api.audit import audited
from api.deps import ApiCaller, Audit, PageSession, State, Week
from api.routes import render
from api.routes._models import (
    model_card_html,
    public_facts,
    registry_facts,
    week_features,
    week_model,
)
from api.schemas import Message, ModelsOut

router = APIRouter()

PLOT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.png$"
REFUSALS = {
    401: {"model": Message, "description": "Not signed in."},
    403: {"model": Message, "description": "Only data scientists see model pages."},
}


# --- API ----------------------------------------------------------------------------------------


@router.get(
    "/api/models",
    response_model=ModelsOut,
    responses=REFUSALS,
    tags=["models"],
    summary="Champion and challenger: metrics, holdout table, fairness audit, plots",
)
def get_models(principal: ApiCaller, state: State, audit: Audit) -> dict:
    with audited(audit, principal, action="read_models", target="models", purpose="model review"):
        access.check_models(principal)
    return public_facts(registry_facts(state), week_model=week_model(state))


@router.get(
    "/api/features",
    responses=REFUSALS,
    tags=["models"],
    summary="This week's pseudonymised model features, a page of households at a time",
)
def get_features(
    principal: ApiCaller,
    state: State,
    week: Week,
    audit: Audit,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    with audited(
        audit, principal, action="read_features", target="features", purpose="model review"
    ) as detail:
        access.check_models(principal)
        detail |= {"as_of": week.as_of_text, "offset": offset, "limit": limit}
    features = week_features(state, week)
    page = features.iloc[offset : offset + limit]
    values = page.to_numpy(dtype=np.float64)
    return {
        "as_of": week.as_of_text,
        "total": len(features),
        "offset": offset,
        "columns": [str(name) for name in features.columns],
        "household_ids": [str(name) for name in page.index],
        "rows": [[None if np.isnan(value) else float(value) for value in row] for row in values],
    }


# --- pages --------------------------------------------------------------------------------------


@router.get("/models", include_in_schema=False)
def models_page(request: Request, session: PageSession, state: State, audit: Audit):
    principal = session.principal
    with audited(audit, principal, action="read_models", target="models", purpose="model review"):
        access.check_models(principal)
    facts = registry_facts(state)
    versions = [facts[alias] for alias in ("champion", "challenger") if facts[alias]]
    return render(
        request,
        "models.html",
        session=session,
        model_name=facts["model_name"],
        versions=versions,
        cards={v["alias"]: model_card_html(v["directory"]) for v in versions},
        week_model=week_model(state),
    )


@router.get("/models/{alias}/plots/{name}", include_in_schema=False)
def model_plot(
    alias: Annotated[str, Path(pattern=r"^(champion|challenger)$")],
    name: Annotated[str, Path(pattern=PLOT_NAME)],
    session: PageSession,
    state: State,
):
    access.check_models(session.principal)
    facts = registry_facts(state).get(alias)
    if facts is None:
        raise access.not_found("model", alias)
    matches = [plot for plot in facts["plots"] if FilePath(plot).name == name]
    if not matches:
        raise access.not_found("plot", name)
    return FileResponse(facts["directory"] / matches[0], media_type="image/png")


@router.get("/models/features.csv", include_in_schema=False)
def features_download(session: PageSession, state: State, week: Week, audit: Audit) -> Response:
    principal = session.principal
    with audited(
        audit, principal, action="read_features", target="features", purpose="model review"
    ) as detail:
        access.check_models(principal)
        detail |= {"as_of": week.as_of_text, "download": True}
    features = week_features(state, week)
    return Response(
        features.rename_axis("household_id").to_csv(float_format="%.6g"),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="features-{week.as_of_text}.csv"',
            "Cache-Control": "no-store",
        },
    )
