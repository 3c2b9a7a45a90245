"""MLflow, and only here: training runs, the model registry, aliases and artifacts.

Tracking defaults to SQLite under REBALANCE_HOME (`sqlite:///<home>/mlflow.db`) with artifacts in
`<home>/mlartifacts`; a `tracking_uri` argument or MLFLOW_TRACKING_URI points elsewhere. MLflow is
imported on first use: it takes seconds to import, and most commands (scoring from a cached model,
tests of the model itself) never need it.

Every function takes plain Python values and returns plain values, so the rest of the project
never touches an MLflow object.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

EXPERIMENT_NAME = "household-escalation"
CHALLENGER = "challenger"
CHAMPION = "champion"
MODEL_ARTIFACT_PATH = "model"


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the registry and the run that produced it."""

    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...]


@functools.cache
def _mlflow():
    # Keep command output readable: no download progress bars, and MLflow and its database
    # migrations log every schema step at INFO. An operator's own setting still wins.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Imported here, once, not at the top: the variable above must be set before mlflow loads,
    # and importing mlflow takes seconds that commands which never track should not pay.
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def _client(tracking_uri: str):
    mlflow = _mlflow()
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_tracking_uri(*, home: str | Path, tracking_uri: str | None = None) -> str:
    """The argument, else MLFLOW_TRACKING_URI, else SQLite in the home folder."""
    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(home).resolve() / 'mlflow.db'}"


def default_artifact_root(tracking_uri: str) -> str | None:
    """`mlartifacts` beside a SQLite database; None lets a tracking server choose."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.parent / "mlartifacts").resolve().as_uri()


def initialise(*, tracking_uri: str) -> None:
    """Create the tracking database's schema now (the first use of a new database is slow)."""
    _client(tracking_uri).search_experiments(max_results=1)


def _experiment_id(client, *, tracking_uri: str, experiment_name: str) -> str:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(
        experiment_name, artifact_location=default_artifact_root(tracking_uri)
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log_values(
    client,
    run_id: str,
    *,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
) -> None:
    entities = _mlflow().entities
    now = int(time.time() * 1000)
    param_list = [entities.Param(key, str(value)[:6000]) for key, value in sorted(params.items())]
    tag_list = [entities.RunTag(key, str(value)) for key, value in sorted(tags.items())]
    metric_list = [
        entities.Metric(key, float(value), now, 0) for key, value in sorted(metrics.items())
    ]
    # MLflow caps a batch at 100 params/tags and 1000 metrics.
    for chunk in _chunks(param_list, 100):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(tag_list, 100):
        client.log_batch(run_id, tags=chunk)
    for chunk in _chunks(metric_list, 1000):
        client.log_batch(run_id, metrics=chunk)


def log_training_run(
    *,
    tracking_uri: str,
    model_name: str,
    run_name: str,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    artifacts_dir: Path,
    experiment_name: str = EXPERIMENT_NAME,
) -> RegisteredVersion:
    """Log one run (values and a folder of artifacts with `model/` in it), register its model
    as a new version of `model_name` and point the `challenger` alias at it."""
    if not (artifacts_dir / MODEL_ARTIFACT_PATH).is_dir():
        raise ValueError(f"{artifacts_dir} has no {MODEL_ARTIFACT_PATH}/ folder to register")
    client = _client(tracking_uri)
    experiment_id = _experiment_id(
        client, tracking_uri=tracking_uri, experiment_name=experiment_name
    )
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    try:
        _log_values(client, run_id, params=params, tags=tags, metrics=metrics)
        client.log_artifacts(run_id, str(artifacts_dir))
        version = _register(client, model_name=model_name, run_id=run_id, tags=tags)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return RegisteredVersion(model_name, version, run_id, (CHALLENGER,))


def _register(client, *, model_name: str, run_id: str, tags: Mapping[str, str]) -> str:
    exceptions = _mlflow().exceptions
    try:
        client.get_registered_model(model_name)
    except exceptions.MlflowException:
        client.create_registered_model(
            model_name, description="Risk of a household crisis within the label horizon."
        )
    version = client.create_model_version(
        model_name,
        source=f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}",
        run_id=run_id,
        tags={key: str(value) for key, value in tags.items()},
    ).version
    client.set_registered_model_alias(model_name, CHALLENGER, str(version))
    return str(version)


def version_by_alias(*, tracking_uri: str, model_name: str, alias: str) -> RegisteredVersion | None:
    """The version an alias points at, or None (no such model or alias yet)."""
    client = _client(tracking_uri)
    try:
        found = client.get_model_version_by_alias(model_name, alias)
    except _mlflow().exceptions.MlflowException:
        return None
    return RegisteredVersion(model_name, str(found.version), found.run_id, tuple(found.aliases))


def set_alias(*, tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    """Point `alias` at `version` (moving it if it pointed elsewhere)."""
    _client(tracking_uri).set_registered_model_alias(model_name, alias, str(version))


def remove_alias(*, tracking_uri: str, model_name: str, alias: str) -> None:
    """Remove `alias` from whichever version has it (nothing happens if none has)."""
    client = _client(tracking_uri)
    try:
        client.delete_registered_model_alias(model_name, alias)
    except _mlflow().exceptions.MlflowException:
        return


def tag_version(
    *, tracking_uri: str, model_name: str, version: str, tags: Mapping[str, str]
) -> None:
    """Add tags to a model version (e.g. the outcome of a promotion)."""
    client = _client(tracking_uri)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, str(value))


def tag_version_run(
    *, tracking_uri: str, model_name: str, version: str, tags: Mapping[str, str]
) -> None:
    """Add tags to the training run behind a model version (what a run list shows)."""
    client = _client(tracking_uri)
    run_id = client.get_model_version(model_name, str(version)).run_id
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def version_tags(*, tracking_uri: str, model_name: str, version: str) -> dict[str, str]:
    """A model version's tags."""
    return dict(_client(tracking_uri).get_model_version(model_name, str(version)).tags)


def run_values(*, tracking_uri: str, run_id: str) -> tuple[dict, dict, dict]:
    """A run's (metrics, params, tags) as plain dicts."""
    data = _client(tracking_uri).get_run(run_id).data
    return dict(data.metrics), dict(data.params), dict(data.tags)


def download_run_artifacts(*, tracking_uri: str, run_id: str, path: str, dst: Path) -> Path:
    """Copy a run's artifact file or folder into `dst`; returns the local path."""
    dst.mkdir(parents=True, exist_ok=True)
    return Path(_client(tracking_uri).download_artifacts(run_id, path, dst_path=str(dst)))


def log_artifacts(*, tracking_uri: str, run_id: str, local_dir: Path, artifact_path: str) -> None:
    """Add a folder of files to an existing (possibly finished) run, under `artifact_path`."""
    _client(tracking_uri).log_artifacts(run_id, str(local_dir), artifact_path=artifact_path)


SIMULATION_EXPERIMENT = "policy-simulation"


def log_simulation_runs(
    *,
    tracking_uri: str,
    runs: list[Mapping[str, object]],
    artifacts_dir: Path,
    experiment_name: str = SIMULATION_EXPERIMENT,
) -> list[str]:
    """Log one run per policy (run_name, params, metrics, tags) with the simulation's files and
    plots as artifacts; returns the run ids."""
    client = _client(tracking_uri)
    experiment_id = _experiment_id(
        client, tracking_uri=tracking_uri, experiment_name=experiment_name
    )
    run_ids = []
    for run in runs:
        run_id = client.create_run(experiment_id, run_name=str(run["run_name"])).info.run_id
        try:
            _log_values(
                client,
                run_id,
                params=run.get("params", {}),
                tags=run.get("tags", {}),
                metrics=run.get("metrics", {}),
            )
            client.log_artifacts(run_id, str(artifacts_dir))
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
        run_ids.append(run_id)
    return run_ids
