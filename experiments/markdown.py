"""Markdown documents from the Jinja2 templates in experiments/templates/ (package data).

The model card, its fairness and accepted-findings sections, the effect-direction section and the
transparency record are templates; the modules that fill them (model_card, transparency,
run_artifacts) only prepare the values. Markdown is not HTML, so nothing is escaped; an undefined
value is an error rather than an empty string.
"""

from __future__ import annotations

import jinja2

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("experiments", "templates"),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def render(template: str, **values: object) -> str:
    """The named template (e.g. "model_card.md.j2") rendered with `values`."""
    return _ENVIRONMENT.get_template(template).render(**values)
