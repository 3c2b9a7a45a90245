"""One settings object for every verb and the service.

Read from the environment and from `<REBALANCE_HOME>/rebalance.toml` when present, so that the
label horizon, the crisis set and the allocation rules are configuration a council can change
without code.

    [labels]
    horizon_weeks = 26
    crisis_types = ["possession_order", "emergency_admission"]

    [allocation]
    top_n = 500

    [needs]                      # docs/reasons.md, "Needs"
    safeguarding = ["domestic_abuse", "parenting"]
    lookback_weeks = {debt = 26}

    [fairness]
    confidence = 0.95
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from features.contract import CRISIS_EVENT_TYPES, EVENT_TYPES
from features.labels import DEFAULT_HORIZON_WEEKS
from features.needs import NeedsSettings, needs_settings_from_mapping

DEFAULT_HOME = Path(".rebalance")


class SettingsError(ValueError):
    """rebalance.toml says something the product cannot use; the message names file and table."""


@dataclass(frozen=True)
class Settings:
    """Where the working store lives and how each stage is configured."""

    home: Path
    tracking_uri: str
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS
    crisis_types: tuple[str, ...] = CRISIS_EVENT_TYPES
    allocation: dict = field(default_factory=dict)
    # How needs are read from records, and which are safeguarding (the allocation's rule too).
    needs: NeedsSettings = field(default_factory=NeedsSettings)
    training: dict = field(default_factory=dict)
    fairness: dict = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000

    @property
    def extract_dir(self) -> Path:
        return self.home / "extract"

    @property
    def weeks_dir(self) -> Path:
        return self.home / "weeks"

    def week_dir(self, as_of) -> Path:
        return self.weeks_dir / str(as_of)[:10]


def _read_config_file(home: Path) -> dict:
    config_path = home / "rebalance.toml"
    if not config_path.exists():
        return {}
    try:
        with config_path.open("rb") as config_file:
            return tomllib.load(config_file)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{config_path}: not valid TOML: {error}") from None


def _checked_crisis_types(crisis_types: list[str], *, config_path: Path) -> tuple[str, ...]:
    unknown = sorted(set(crisis_types) - set(EVENT_TYPES))
    if unknown:
        raise SettingsError(
            f"{config_path}: [labels] crisis_types has unknown event types {unknown}"
        )
    return tuple(crisis_types)


def _checked_needs(table: dict, *, config_path: Path) -> NeedsSettings:
    try:
        return needs_settings_from_mapping(table)
    except ValueError as error:
        raise SettingsError(f"{config_path}: {error}") from None


def _checked_allocation(table: dict, *, config_path: Path) -> dict:
    # The safeguarding set is one setting, read by needs and allocation alike: it lives in [needs].
    if "safeguarding" in table:
        raise SettingsError(f"{config_path}: [allocation] safeguarding belongs in [needs]")
    return dict(table)


def load_settings(*, home: Path | None = None, tracking_uri: str | None = None) -> Settings:
    """Settings from arguments, then the environment, then rebalance.toml, then defaults."""
    home = Path(home or os.environ.get("REBALANCE_HOME") or DEFAULT_HOME).resolve()
    config = _read_config_file(home)
    config_path = home / "rebalance.toml"
    labels = config.get("labels", {})
    service = config.get("service", {})
    return Settings(
        home=home,
        tracking_uri=tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{home / 'mlflow.db'}",
        horizon_weeks=int(labels.get("horizon_weeks", DEFAULT_HORIZON_WEEKS)),
        crisis_types=_checked_crisis_types(
            labels.get("crisis_types", list(CRISIS_EVENT_TYPES)),
            config_path=config_path,
        ),
        allocation=_checked_allocation(config.get("allocation", {}), config_path=config_path),
        needs=_checked_needs(config.get("needs", {}), config_path=config_path),
        training=dict(config.get("training", {})),
        fairness=dict(config.get("fairness", {})),
        host=str(service.get("host", "127.0.0.1")),
        port=int(service.get("port", 8000)),
    )
