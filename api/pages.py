"""The page templates (api/templates) and their filters, in one Jinja environment.

Templates are read once: `auto_reload` is off, because checking each template file's time on
every render costs a household page a tenth of its time, and a new release restarts the service
anyway.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi.templating import Jinja2Templates

from api.access import HOME_PAGES

TEMPLATE_DIR = Path(__file__).parent / "templates"
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, auto_reload=False
)
TEMPLATES = Jinja2Templates(env=ENVIRONMENT)
ENVIRONMENT.globals["home_pages"] = HOME_PAGES


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


ENVIRONMENT.filters["percent"] = _percent
ENVIRONMENT.filters["figure"] = _figure
ENVIRONMENT.filters["signed_points"] = _signed_points
