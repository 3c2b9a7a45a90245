"""The web service: server-rendered pages over the weekly outputs (no CDN, works offline)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.settings import Settings, load_settings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def latest_week_dir(settings: Settings) -> Path | None:
    """The most recent weekly run that wrote a proposal."""
    if not settings.weeks_dir.exists():
        return None
    weeks = sorted(
        path for path in settings.weeks_dir.iterdir() if (path / "proposal.csv").exists()
    )
    return weeks[-1] if weeks else None


def read_week(week_dir: Path) -> dict:
    proposal = pd.read_csv(week_dir / "proposal.csv", dtype=str, keep_default_na=False)
    workers_path = week_dir / "proposal-workers.csv"
    workers = (
        pd.read_csv(workers_path, dtype=str, keep_default_na=False)
        if workers_path.exists()
        else pd.DataFrame()
    )
    return {
        "as_of": week_dir.name,
        "assigned": proposal.loc[proposal["status"] == "assigned"].to_dict("records"),
        "waitlisted": proposal.loc[proposal["status"] == "waitlisted"].to_dict("records"),
        "workers": workers.to_dict("records"),
        "summary": (week_dir / "summary.md").read_text(encoding="utf-8")
        if (week_dir / "summary.md").exists()
        else "",
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(title="Rebalance", description="Early help prioritisation and allocation.")

    @app.get("/", response_class=HTMLResponse)
    def proposal_page(request: Request) -> HTMLResponse:
        week_dir = latest_week_dir(settings)
        if week_dir is None:
            raise HTTPException(404, "No weekly proposal yet: run `rebalance allocate`.")
        return TEMPLATES.TemplateResponse(request, "proposal.html", read_week(week_dir))

    return app
