"""The programme page: the latest policy simulation, its cost case and outcome measures.

Reads what `rebalance simulate` wrote under REBALANCE_HOME/programme/ (no household-level data);
an empty state until a simulation has been run. For locality managers and data scientists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse

from api import access
from api.deps import ApiCaller, PageSession, State
from api.routes import render
from api.schemas import Message
from experiments.simulation import read_simulation_summary

router = APIRouter()

PLOT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.png$"
REFUSALS = {
    401: {"model": Message, "description": "Not signed in."},
    403: {"model": Message, "description": "Only managers and data scientists see the programme."},
}


def _folder(state):
    return state.settings.home / "programme"


@router.get(
    "/api/programme",
    responses=REFUSALS,
    tags=["programme"],
    summary="The latest policy simulation: policies with intervals, costs by agency, DiD",
)
def get_programme(principal: ApiCaller, state: State) -> dict:
    # Aggregates only (no household is named), so reading them is not an audited access.
    access.check_programme(principal)
    summary = read_simulation_summary(_folder(state))
    return {"available": summary is not None} | (summary or {})


@router.get("/programme", include_in_schema=False)
def programme_page(request: Request, session: PageSession, state: State):
    access.check_programme(session.principal)
    return render(
        request,
        "programme.html",
        session=session,
        summary=read_simulation_summary(_folder(state)),
    )


@router.get("/programme/plots/{name}", include_in_schema=False)
def programme_plot(
    name: Annotated[str, Path(pattern=PLOT_NAME)], session: PageSession, state: State
):
    access.check_programme(session.principal)
    summary = read_simulation_summary(_folder(state)) or {}
    if name not in summary.get("plots", []):
        raise access.not_found("plot", name)
    return FileResponse(_folder(state) / "plots" / name, media_type="image/png")
