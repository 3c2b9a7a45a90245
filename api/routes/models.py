"""Model pages for data scientists: the JSON API and the page (logic in _models)."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from api import access
from api.audit import audited
from api.deps import DB, ApiCaller, Audit, PageSession, State, Week
from api.routes import render
from api.routes._models import (
    model_card_html,
    public_facts,
    registry_facts,
    transparency_record_html,
    week_features,
    week_model,
)
from api.routes._overrides import override_export
from api.schemas import Message, ModelsOut
from experiments.overrides import summarise_overrides

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


def override_rates_of(decisions) -> list[dict]:
    """Override and agreement rates overall, by locality, band and manager (empty: none yet)."""

    records = decisions.loc[
        decisions["decision"].isin(["accepted", "changed_worker", "not_allocated", "added"])
    ]
    if records.empty:
        return []
    rates = summarise_overrides(
        records.rename(columns={"decided_by": "manager"}).assign(
            shown_risk=records["shown_risk"].astype("float64")
        )
    )
    return rates.astype(object).where(rates.notna(), None).to_dict("records")


@router.get(
    "/api/overrides",
    responses=REFUSALS,
    tags=["models"],
    summary="Every manager decision with the risk, band and reasons shown, for evaluation",
)
def get_overrides(
    principal: ApiCaller,
    db: DB,
    audit: Audit,
    since: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}")] = None,
) -> dict:
    with audited(
        audit, principal, action="read_models", target="overrides", purpose="tool evaluation"
    ) as detail:
        access.check_models(principal)
        detail["since"] = since
    decisions = override_export(db, since=since)
    records = decisions.astype(object).where(decisions.notna(), None).to_dict("records")
    return {
        "decisions": records,
        "overridden": int(decisions["overridden"].sum()),
        "rates": override_rates_of(decisions),
    }


@router.get("/models/overrides.csv", include_in_schema=False)
def overrides_download(session: PageSession, db: DB, audit: Audit) -> Response:
    principal = session.principal
    with audited(
        audit, principal, action="read_models", target="overrides", purpose="tool evaluation"
    ) as detail:
        access.check_models(principal)
        detail["download"] = True
    return Response(
        override_export(db).to_csv(index=False),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="overrides.csv"',
            "Cache-Control": "no-store",
        },
    )


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
        records={
            v["alias"]: transparency_record_html(state.settings, version=v["version"])
            for v in versions
        },
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
