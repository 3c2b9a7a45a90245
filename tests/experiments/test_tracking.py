"""experiments.tracking: the only MLflow module (runs, registry, aliases, artifacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import tracking

MODEL = "household-escalation"


@pytest.fixture
def home(rebalance_home) -> Path:
    return rebalance_home


def _artifacts(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / f"artifacts-{text}"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "booster.txt").write_text(text)
    (folder / "model_card.md").write_text(f"# card {text}\n")
    return folder


def _log(home: Path, tmp_path: Path, text: str, **metrics) -> tracking.RegisteredVersion:
    return tracking.log_training_run(
        tracking_uri=tracking.resolve_tracking_uri(home=home),
        model_name=MODEL,
        run_name=f"run-{text}",
        params={"folds": "6", "snapshot_id": text},
        tags={"snapshot_id": text},
        metrics=metrics or {"holdout_model_auc": 0.8},
        artifacts_dir=_artifacts(tmp_path, text),
    )


def test_tracking_uri_comes_from_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = tracking.resolve_tracking_uri(home=tmp_path)
    assert default == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.resolve_tracking_uri(home=tmp_path) == "http://tracking.example:5000"
    assert tracking.resolve_tracking_uri(home=tmp_path, tracking_uri="sqlite:///x.db") == (
        "sqlite:///x.db"
    )


def test_artifacts_sit_beside_a_sqlite_database_and_servers_choose_their_own(tmp_path):
    root = tracking.default_artifact_root(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert root == (tmp_path / "mlartifacts").resolve().as_uri()
    assert tracking.default_artifact_root("http://tracking.example:5000") is None


def test_each_run_registers_a_new_version_and_moves_the_challenger_alias(home, tmp_path):
    uri = tracking.resolve_tracking_uri(home=home)
    first = _log(home, tmp_path, "a")
    second = _log(home, tmp_path, "b")
    assert (first.version, second.version) == ("1", "2")
    challenger = tracking.version_by_alias(tracking_uri=uri, model_name=MODEL, alias="challenger")
    assert (challenger.version, challenger.run_id) == ("2", second.run_id)
    assert tracking.version_by_alias(tracking_uri=uri, model_name=MODEL, alias="champion") is None
    assert tracking.version_by_alias(tracking_uri=uri, model_name="unknown", alias="x") is None
    assert (home / "mlartifacts").is_dir()


def test_aliases_can_be_set_moved_and_removed(home, tmp_path):
    uri = tracking.resolve_tracking_uri(home=home)
    _log(home, tmp_path, "a")
    _log(home, tmp_path, "b")
    tracking.set_alias(tracking_uri=uri, model_name=MODEL, alias="champion", version="1")
    tracking.set_alias(tracking_uri=uri, model_name=MODEL, alias="champion", version="2")
    assert tracking.version_by_alias(
        tracking_uri=uri, model_name=MODEL, alias="champion"
    ).version == ("2")
    tracking.remove_alias(tracking_uri=uri, model_name=MODEL, alias="champion")
    tracking.remove_alias(tracking_uri=uri, model_name=MODEL, alias="champion")
    assert tracking.version_by_alias(tracking_uri=uri, model_name=MODEL, alias="champion") is None


def test_every_metric_param_and_artifact_is_stored(home, tmp_path):
    uri = tracking.resolve_tracking_uri(home=home)
    # More than one MLflow batch of each kind.
    metrics = {f"fold{n}_model_auc": n / 2000 for n in range(1500)}
    registered = _log(home, tmp_path, "a", **metrics)
    stored_metrics, params, tags = tracking.run_values(tracking_uri=uri, run_id=registered.run_id)
    assert stored_metrics == pytest.approx(metrics)
    assert params == {"folds": "6", "snapshot_id": "a"}
    assert tags["snapshot_id"] == "a"
    model = tracking.download_run_artifacts(
        tracking_uri=uri, run_id=registered.run_id, path="model", dst=tmp_path / "download"
    )
    assert (model / "booster.txt").read_text() == "a"


def test_a_run_without_a_model_folder_is_refused(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="model/"):
        tracking.log_training_run(
            tracking_uri=tracking.resolve_tracking_uri(home=home),
            model_name=MODEL,
            run_name="broken",
            params={},
            tags={},
            metrics={},
            artifacts_dir=empty,
        )


def test_version_tags_are_recorded(home, tmp_path):
    uri = tracking.resolve_tracking_uri(home=home)
    _log(home, tmp_path, "a")
    tracking.tag_version(tracking_uri=uri, model_name=MODEL, version="1", tags={"promotion": "ok"})
    tags = tracking.version_tags(tracking_uri=uri, model_name=MODEL, version="1")
    assert tags["promotion"] == "ok" and tags["snapshot_id"] == "a"
