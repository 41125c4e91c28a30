"""Generate a realistic ModelOps project of N models for the benchmarks.

Every 5 models share a dataset; each model gets a drift monitor and one more monitor, the
metrics taken in turn (:data:`MODEL_MONITORS`: latency percentiles and average, error rate,
invocations, utilisation, and the monitor job's data quality, prediction drift and model
quality), besides its default ones; every dataset has a freshness monitor.
Three environment overlays (dev, staging, prod) adjust capacity the way teams do, each
touching one model in ten (:func:`overlays`), and prod runs a canary of another version on
one model in twenty (:data:`CANARY_EVERY`). Models reference one prebuilt artifact
(``artifact:``), and the canaries a second package of it (:func:`write_canary_package`), so
that what is measured is the tool, not scikit-learn training. With ``--teams N`` the same spec is written as a
root spec that includes N team files (``teams/team-NN.yaml``, :func:`split_into_teams`).
With ``--data-rows R`` each dataset reads its own CSV (10 to 30 columns, R rows; 10,000 is
a realistic size), where a real spec spends validate's time.

Example::

    python -m benchmarks.generate 1000 /tmp/bench-1000 --artifact path/to/model.tar.gz
    python -m benchmarks.generate 1000 /tmp/bench-1000-teams --artifact path/to/model.tar.gz --teams 20
    python -m benchmarks.generate 1000 /tmp/bench-1000-data --artifact path/to/model.tar.gz --data-rows 10000
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

ESTIMATORS = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.ensemble.RandomForestClassifier",
)
INSTANCE_TYPES = ("ml.m5.large", "ml.c5.large", "ml.m5.xlarge")
#: the second monitor of model i is MODEL_MONITORS[i % len(MODEL_MONITORS)]:
#: (metric, name suffix, threshold, extra keys)
MODEL_MONITORS = (
    ("latency_p90", "p90", "{ms}ms", {}),
    ("latency_p99", "p99", "{ms2}ms", {}),
    ("latency_p50", "p50", "{ms_half}ms", {}),
    ("latency_avg", "avg", "{ms_half}ms", {"period": "5m", "for": "15m"}),
    ("error_rate", "errors", "2%", {}),
    ("invocations", "calls", 1, {"below": True, "period": "1h", "for": "3h"}),
    ("cpu_utilization", "cpu", "80%", {}),
    ("memory_utilization", "memory", "85%", {}),
    ("data_quality", "quality", 0.05, {}),
    ("prediction_drift", "pred-drift", 0.2, {}),
    ("model_quality", "accuracy", 0.7, {"below": True, "quality": "accuracy"}),
)
#: prod runs a canary of the second package on every CANARY_EVERY-th model
CANARY_EVERY = 20
#: each overlay adjusts every OVERLAY_EVERY-th model (10%)
OVERLAY_EVERY = 10
#: the model that brings the canaries' package into the store (it serves it as its primary)
CANARY_SOURCE = "canary-source"


def model_name(i: int) -> str:
    return f"model-{i:04d}"


def dataset_name(i: int) -> str:
    return f"data-{i // 5:04d}"


def spec(n_models: int, canaries: bool = False) -> dict:
    """The spec of ``n_models`` models; with ``canaries``, one more model serving the canaries'
    package (:data:`CANARY_SOURCE`, ``artifacts/model-canary.tar.gz``)."""
    datasets = {}
    models = {}
    monitors = {}
    for i in range(n_models):
        ds = dataset_name(i)
        datasets.setdefault(
            ds,
            {
                "description": f"Feature table {ds}",
                "format": "csv",
                "columns": {"f1": "double", "f2": "double", "segment": "string", "label": "int"},
                "retention": {"noncurrent_days": 30 + i % 60, "archive_after_days": 180},
            },
        )
        name = model_name(i)
        models[name] = {
            "description": f"Scoring model {i}",
            "dataset": ds,
            "artifact": "artifacts/model.tar.gz",
            "serving": {
                "instance_type": INSTANCE_TYPES[i % len(INSTANCE_TYPES)],
                "instance_count": 2,
                "autoscaling": {"min": 2, "max": 3 + i % 4, "target_invocations": 100 + i % 7 * 50},
            },
            "gates": {"accuracy": ">= 0.7"},
        }
        metric, suffix, threshold, extra = MODEL_MONITORS[i % len(MODEL_MONITORS)]
        ms = 200 + i % 10 * 25
        if isinstance(threshold, str):
            threshold = threshold.format(ms=ms, ms2=ms * 2, ms_half=ms // 2)
        extra = dict(extra)
        side = "below" if extra.pop("below", False) else "above"
        monitors[f"m{i:04d}-{suffix}"] = {
            "model": name, "metric": metric, side: threshold, **extra, "notify": ["oncall"],
        }
        monitors[f"m{i:04d}-drift"] = {
            "model": name,
            "metric": "data_drift",
            "above": 0.2,
            "period": "1h",
            "for": "1h",
            "notify": ["oncall"],
        }
    for ds in datasets:
        monitors[f"{ds}-freshness"] = {"dataset": ds, "metric": "freshness", "above": "24h", "period": "1h", "for": "1h",
                                       "notify": ["oncall"]}
    if canaries:
        models[CANARY_SOURCE] = {
            "description": "Serves the second package, so that it is in the artifact store for the canaries",
            "dataset": dataset_name(0),
            "artifact": "artifacts/model-canary.tar.gz",
            "serving": {"instance_type": "ml.m5.large", "instance_count": 2},
        }
    return {
        "apiVersion": "modelops/v1",
        "project": "bench",
        "owner": "ml-platform@example.com",
        "region": "eu-west-1",
        "tags": {"cost-center": "ml-bench"},
        "notifications": {"oncall": {"email": ["ml-oncall@example.com"]}},
        "datasets": datasets,
        "models": models,
        "monitors": monitors,
    }


def team_owner(team: str) -> str:
    return f"{team}@example.com"


def split_into_teams(spec_data: dict, teams: int) -> tuple[dict, dict[str, dict]]:
    """``spec_data`` as a root spec that includes ``teams`` team files: ``(root, {path: team file})``.

    The models are dealt out in order, in contiguous blocks of (nearly) equal size, one block
    per team (``teams/team-00.yaml``, …, each with its ``owner``); a dataset goes to the team
    of the first model that reads it, a monitor to the team of what it watches. What no model
    reads, and the notification channels, stay in the root spec, which includes
    ``teams/*.yaml``. Resolved, the two forms are the same spec but for the owners.

    Example::

        root, files = split_into_teams(spec(1000), 20)
        len(files["teams/team-00.yaml"]["models"])   # 50
    """
    models = list(spec_data.get("models", {}))
    names = [f"team-{index:02d}" for index in range(teams)]
    team_of_model = {name: names[index * teams // len(models)] for index, name in enumerate(models)} if models else {}
    team_of_dataset: dict[str, str] = {}
    for name, body in spec_data.get("models", {}).items():
        team_of_dataset.setdefault(body.get("dataset"), team_of_model[name])
    files = {team: {"owner": team_owner(team), "datasets": {}, "models": {}, "monitors": {}} for team in names}
    root = {key: value for key, value in spec_data.items() if key not in ("datasets", "models", "monitors")}
    root["include"] = ["teams/*.yaml"]
    kept: dict[str, dict] = {"datasets": {}, "monitors": {}}
    for name, body in spec_data.get("datasets", {}).items():
        team = team_of_dataset.get(name)
        (files[team]["datasets"] if team else kept["datasets"])[name] = body
    for name, body in spec_data.get("models", {}).items():
        files[team_of_model[name]]["models"][name] = body
    for name, body in spec_data.get("monitors", {}).items():
        team = team_of_model.get(body.get("model")) or team_of_dataset.get(body.get("dataset"))
        (files[team]["monitors"] if team else kept["monitors"])[name] = body
    root.update({kind: entries for kind, entries in kept.items() if entries})
    return root, {f"teams/{team}.yaml": {k: v for k, v in body.items() if v} for team, body in files.items()}


def overlays(n_models: int, canary_version: str | None = None) -> dict[str, dict]:
    """Each overlay adjusts one model in ten: dev runs it on one instance, staging on another
    instance type, prod with more capacity; prod also runs a canary of ``canary_version`` on
    one model in twenty. (The spec serves every model on two instances, as prod's policy
    asks.)"""
    dev = {"models": {model_name(i): {"serving": {"instance_count": 1, "autoscaling": {"min": 1}}}
                      for i in range(2, n_models, OVERLAY_EVERY)}}
    staging = {"models": {model_name(i): {"serving": {"instance_type": "ml.m5.xlarge"}}
                          for i in range(1, n_models, OVERLAY_EVERY)}}
    prod_models: dict[str, dict] = {
        model_name(i): {"serving": {"instance_count": 3, "autoscaling": {"min": 3, "max": 8}}}
        for i in range(0, n_models, OVERLAY_EVERY)
    }
    if canary_version:
        for i in range(5, n_models, CANARY_EVERY):
            prod_models.setdefault(model_name(i), {"serving": {}})["serving"]["canary"] = {"version": canary_version, "weight": 0.1}
    return {"dev": dev, "staging": staging, "prod": {"protect": True, "models": prod_models}}


def write_canary_package(artifact: Path, destination: Path) -> str:
    """A second package of ``artifact``: the same tar, gzipped with another header time, so
    another version (digest) of the same model, as a rebuild makes one. Returns its digest."""
    import gzip
    import hashlib

    try:
        with gzip.open(artifact, "rb") as handle:
            data = gzip.compress(handle.read(), mtime=1)
    except (OSError, EOFError):  # not a package (tests attach a fixed artifact): other bytes will do
        data = artifact.read_bytes() + b"\n"
    destination.write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


#: rows of each generated data file (``data_rows`` of :func:`write_project`)
DATA_ROWS = 10_000


def data_columns(index: int) -> list[tuple[str, str]]:
    """The columns of dataset ``index``'s data file: 10 to 30, numeric, categorical and flags, and a label."""
    width = 10 + (index * 7) % 21
    kinds = ("double", "bigint", "string", "double", "boolean")
    return [(f"c{c:02d}", kinds[c % len(kinds)]) for c in range(width - 1)] + [("label", "bigint")]


def write_data_file(path: Path, index: int, rows: int = DATA_ROWS) -> None:
    """A CSV of ``rows`` rows in the columns of :func:`data_columns`, values like a feature table's."""
    import numpy as np

    rng = np.random.default_rng(index)
    columns = data_columns(index)
    cells = []
    for position, (_, kind) in enumerate(columns):
        if kind == "double":
            cells.append(np.char.mod("%.4f", rng.normal(50 + position, 10 + position, rows)))
        elif kind == "bigint":
            cells.append(rng.integers(0, 1000 if position else 2, rows).astype(str))
        elif kind == "boolean":
            cells.append(np.where(rng.random(rows) < 0.3, "true", "false"))
        else:
            cells.append(np.array([f"segment-{k}" for k in range(12)])[rng.integers(0, 12, rows)])
    lines = [",".join(name for name, _ in columns)] + [",".join(row) for row in zip(*cells)]
    path.write_text("\n".join(lines) + "\n")


def with_data_files(data: dict, root: Path, rows: int = DATA_ROWS) -> dict:
    """``data`` with each dataset reading its own CSV under ``root/data/`` (its ``source:``;
    its columns then come from the file's header and rows, as a real spec's do)."""
    (root / "data").mkdir(exist_ok=True)
    for index, (name, body) in enumerate(sorted(data["datasets"].items())):
        write_data_file(root / "data" / f"{name}.csv", index, rows)
        body.pop("columns", None)
        body["source"] = f"data/{name}.csv"
    return data


def write_project(n_models: int, root: Path, artifact: Path, teams: int = 0, data_rows: int = 0,
                  canaries: bool = True) -> Path:
    """Write ``modelops.yaml``, ``stacks/*.yaml`` and the shared artifact under ``root`` (and,
    with ``canaries`` and at least :data:`CANARY_EVERY` models, the canaries' package);
    with ``teams``, the spec as a root spec and that many team files under ``teams/``; with
    ``data_rows``, each dataset its own CSV of that many rows (:func:`with_data_files`)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stacks").mkdir(exist_ok=True)
    (root / "artifacts").mkdir(exist_ok=True)
    shutil.copyfile(artifact, root / "artifacts" / "model.tar.gz")
    canaries = canaries and n_models >= CANARY_EVERY
    canary = write_canary_package(artifact, root / "artifacts" / "model-canary.tar.gz") if canaries else None
    header = "# yaml-language-server: $schema=schemas/modelops.schema.json\n"
    data = spec(n_models, canaries)
    if data_rows:
        data = with_data_files(data, root, data_rows)
    if teams:
        data, team_files = split_into_teams(data, teams)
        (root / "teams").mkdir(exist_ok=True)
        for path, team_data in team_files.items():
            (root / path).write_text("# yaml-language-server: $schema=../schemas/team.schema.json\n"
                                     + yaml.safe_dump(team_data, sort_keys=False))
    (root / "modelops.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False))
    for env, overlay in overlays(n_models, canary).items():
        (root / "stacks" / f"{env}.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return root / "modelops.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--artifact", type=Path, required=True, help="a model.tar.gz built by modelops build")
    parser.add_argument("--teams", type=int, default=0, help="write the spec as a root spec including this many team files")
    parser.add_argument("--data-rows", type=int, default=0,
                        help=f"give each dataset its own CSV source of this many rows (realistic: {DATA_ROWS})")
    args = parser.parse_args()
    print(write_project(args.models, args.out, args.artifact, args.teams, args.data_rows))


if __name__ == "__main__":
    main()
