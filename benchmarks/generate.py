"""Generate a realistic ModelOps project of N models for the benchmarks.

Every 5 models share a dataset; each model gets a latency and a drift monitor besides its
default ones; three environment overlays (dev, staging, prod) adjust capacity the way
teams do. Models reference one prebuilt artifact (``artifact:``), so that what is measured
is the tool, not scikit-learn training.

Example::

    python -m benchmarks.generate 1000 /tmp/bench-1000 --artifact path/to/model.tar.gz
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


def model_name(i: int) -> str:
    return f"model-{i:04d}"


def dataset_name(i: int) -> str:
    return f"data-{i // 5:04d}"


def spec(n_models: int) -> dict:
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
                "instance_count": 1,
                "autoscaling": {"min": 1, "max": 2 + i % 4, "target_invocations": 100 + i % 7 * 50},
            },
            "gates": {"accuracy": ">= 0.7"},
        }
        monitors[f"m{i:04d}-latency"] = {
            "model": name,
            "metric": "latency_p90",
            "above": f"{200 + i % 10 * 25}ms",
            "notify": ["oncall"],
        }
        monitors[f"m{i:04d}-drift"] = {
            "model": name,
            "metric": "data_drift",
            "above": 0.2,
            "period": "1h",
            "for": "1h",
            "notify": ["oncall"],
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


def overlays(n_models: int) -> dict[str, dict]:
    staging = {"models": {model_name(i): {"serving": {"instance_count": 1}} for i in range(0, n_models, 3)}}
    prod = {
        "protect": True,
        "models": {
            model_name(i): {"serving": {"instance_count": 2, "autoscaling": {"min": 2, "max": 6}}}
            for i in range(n_models)
        },
    }
    return {"dev": {}, "staging": staging, "prod": prod}


def write_project(n_models: int, root: Path, artifact: Path) -> Path:
    """Write ``modelops.yaml``, ``stacks/*.yaml`` and the shared artifact under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stacks").mkdir(exist_ok=True)
    (root / "artifacts").mkdir(exist_ok=True)
    shutil.copyfile(artifact, root / "artifacts" / "model.tar.gz")
    header = "# yaml-language-server: $schema=schemas/modelops.schema.json\n"
    (root / "modelops.yaml").write_text(header + yaml.safe_dump(spec(n_models), sort_keys=False))
    for env, overlay in overlays(n_models).items():
        (root / "stacks" / f"{env}.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return root / "modelops.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--artifact", type=Path, required=True, help="a model.tar.gz built by modelops build")
    args = parser.parse_args()
    print(write_project(args.models, args.out, args.artifact))


if __name__ == "__main__":
    main()
