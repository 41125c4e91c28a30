"""``modelops build``: real training, honest metrics, reproducible content-addressed packages."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import re
import resource
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn import metrics as skm

from modelops.components.serving_images import framework_for_sklearn
from modelops.spec import resolved
from modelops.ml.artifacts import (
    attach_artifacts,
    build_model,
    card,
    cached_build,
    lookup,
    resolve_artifact,
    store_path,
)
from modelops.spec.envs import load_environment
from modelops.errors import UsageError
from modelops.ml.build import split_indices, target_values
from modelops.ml.table import read_table
from tests.helpers import ROOT
from tests.ml.helpers import Project, make_project, read_csv, run_cli

GATE_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def member(path: str | Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def held_out(project: Project, model_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The held-out rows and labels, recomputed from the data file and the spec."""
    model = project.env.models[model_name]
    dataset = project.env.datasets[model.dataset]
    table = read_table(dataset.source, "csv")
    the_card = card(getattr(project, model_name).artifact.digest, project.root)
    features = [f["name"] for f in the_card["features"]]
    classification = the_card["task"] == "classification"
    y = target_values(table, model.train.target, classification)
    _, test_idx = split_indices(y, model.train, classification)
    return table.matrix(features)[test_idx], y[test_idx]


# ------------------------------------------------------------------------------ package contents


def test_digest_is_sha256_of_the_stored_package(built_project: Project) -> None:
    artifact = built_project.churn.artifact
    assert artifact.digest == sha256(Path(artifact.path))
    assert Path(artifact.path) == store_path(artifact.digest, built_project.root)
    assert Path(artifact.path).parent.name == artifact.digest.removeprefix("sha256:")


def test_package_has_the_sagemaker_layout_and_is_byte_stable(built_project: Project) -> None:
    data = Path(built_project.churn.artifact.path).read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime is zero
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    files = [m.name for m in members if m.isfile()]
    assert files == sorted(files)
    assert set(files) == {"baseline.json", "card.json", "code/inference.py", "model.joblib"}
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    source = ROOT / "modelops" / "ml" / "inference.py"
    assert member(built_project.churn.artifact.path, "code/inference.py") == source.read_bytes()


def test_card_records_what_monitors_and_gates_need(built_project: Project) -> None:
    import sklearn

    the_card = json.loads(member(built_project.churn.artifact.path, "card.json"))
    assert the_card == card(built_project.churn.artifact.digest, built_project.root)
    assert the_card["estimator"] == "sklearn.ensemble.RandomForestClassifier"
    assert the_card["params"] == {"max_depth": 8, "n_estimators": 20, "random_state": 0}
    assert the_card["libraries"]["scikit-learn"] == sklearn.__version__
    assert the_card["framework_version"] == framework_for_sklearn(sklearn.__version__) == "1.9-0"
    assert the_card["dataset"]["digest"] == sha256(built_project.root / "data" / "customers.csv")
    assert the_card["dataset"]["rows"] == 2000
    assert the_card["features"] == [
        {"name": "tenure_months", "kind": "numeric"},
        {"name": "monthly_charges", "kind": "numeric"},
        {"name": "support_calls", "kind": "numeric"},
        {"name": "contract", "kind": "categorical"},
        {"name": "payment_method", "kind": "categorical"},
    ]
    assert the_card["classes"] == [0, 1]
    assert set(the_card["metrics"]) == {"accuracy", "f1", "roc_auc"}


def test_baseline_has_ten_quantile_bins_and_category_frequencies(built_project: Project) -> None:
    base = json.loads(member(built_project.churn.artifact.path, "baseline.json"))
    tenure = base["features"]["tenure_months"]
    assert tenure["kind"] == "numeric"
    assert len(tenure["edges"]) == 11 and len(tenure["proportions"]) == 10
    assert tenure["edges"] == sorted(tenure["edges"])
    assert math.isclose(sum(tenure["proportions"]), 1.0, abs_tol=1e-9)
    assert tenure["edges"][0] >= 1 and tenure["edges"][-1] <= 72
    contract = base["features"]["contract"]
    assert contract["kind"] == "categorical"
    assert set(contract["frequencies"]) == {"month-to-month", "one-year", "two-year"}
    assert math.isclose(sum(contract["frequencies"].values()), 1.0, abs_tol=1e-9)
    # training rows only: 80 % of 2,000
    assert contract["count"] == 1600


# ------------------------------------------------------------------------------ metrics


def test_classifier_metrics_equal_sklearn_metrics_on_the_same_split(built_project: Project) -> None:
    pipeline = joblib.load(io.BytesIO(member(built_project.churn.artifact.path, "model.joblib")))
    X, y = held_out(built_project, "churn")
    assert len(y) == 400
    expected = {
        "accuracy": skm.accuracy_score(y, pipeline.predict(X)),
        "f1": skm.f1_score(y, pipeline.predict(X)),
        "roc_auc": skm.roc_auc_score(y, pipeline.predict_proba(X)[:, 1]),
    }
    for name, value in expected.items():
        assert built_project.churn.metrics[name] == pytest.approx(value, rel=1e-9), name


def test_regressor_metrics_equal_sklearn_metrics_on_the_same_split(built_project: Project) -> None:
    pipeline = joblib.load(io.BytesIO(member(built_project.amount.artifact.path, "model.joblib")))
    X, y = held_out(built_project, "amount")
    predicted = pipeline.predict(X)
    expected = {
        "r2": skm.r2_score(y, predicted),
        "mae": skm.mean_absolute_error(y, predicted),
        "rmse": math.sqrt(skm.mean_squared_error(y, predicted)),
    }
    for name, value in expected.items():
        assert built_project.amount.metrics[name] == pytest.approx(value, rel=1e-9), name


def test_gates_are_readable_from_the_card_and_the_example_models_meet_them(built_project: Project) -> None:
    for name in ("churn", "amount"):
        model = built_project.env.models[name]
        the_card = card(getattr(built_project, name).artifact.digest, built_project.root)
        assert model.gates, "the test spec declares gates"
        for gate in model.gates:
            assert GATE_OPS[gate.op](the_card["metrics"][gate.metric], gate.value), (name, gate)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "model"),
    [("modelops.yaml", "churn-classifier"), ("examples/fraud/modelops.yaml", "fraud-scorer"),
     ("examples/fraud/modelops.yaml", "fraud-amount")],
)
def test_example_models_meet_their_example_gates(repo_root: Path, tmp_path: Path, spec: str, model: str) -> None:
    env = load_environment(repo_root / spec, "dev")
    outcome = build_model(env, model, tmp_path, force=True)
    for gate in env.models[model].gates:
        assert GATE_OPS[gate.op](outcome.metrics[gate.metric], gate.value), (model, gate, outcome.metrics)


# ------------------------------------------------------------------------------ reproducibility


def test_same_spec_and_data_give_the_same_digest_in_another_store(built_project: Project, tmp_path: Path) -> None:
    again = build_model(built_project.env, "churn", tmp_path, force=True)
    assert not again.cached
    assert again.artifact.digest == built_project.churn.artifact.digest
    assert Path(again.artifact.path).read_bytes() == Path(built_project.churn.artifact.path).read_bytes()


def test_two_processes_build_the_same_digest(built_project: Project, tmp_path: Path) -> None:
    # GIVEN two independent copies of the project, WHEN each is built by its own CLI process
    specs = [make_project(tmp_path / f"copy{i}") for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "modelops", "build", "churn", str(s), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in specs
    ]
    results = [p.communicate(timeout=180) for p in procs]
    # THEN both report the digest this process built too
    digests = []
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        digests.append(json.loads(out)["digest"])
    assert digests == [built_project.churn.artifact.digest] * 2


def test_concurrent_builds_of_one_model_share_one_store_entry(fresh_project: Path) -> None:
    env = load_environment(fresh_project, "dev")
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            outcomes.append(build_model(env, "churn").artifact.digest)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(outcomes)) == 1
    assert lookup(outcomes[0], fresh_project.parent) is not None
    leftovers = [p for p in (fresh_project.parent / ".modelops").rglob("*.tmp")]
    assert leftovers == []


def test_changed_data_or_params_change_the_digest(built_project: Project, fresh_project: Path) -> None:
    env = load_environment(fresh_project, "dev")
    model = env.models["churn"]
    more_trees = dataclasses.replace(model, train=dataclasses.replace(model.train, params=(("max_depth", 8), ("n_estimators", 21))))
    changed = build_model(dataclasses.replace(env, models={"churn": more_trees}), "churn")
    assert changed.artifact.digest != built_project.churn.artifact.digest

    header, rows = read_csv(fresh_project.parent / "data" / "customers.csv")
    with open(fresh_project.parent / "data" / "customers.csv", "w", encoding="utf-8") as handle:
        handle.write(",".join(header) + "\n" + "\n".join(",".join(r) for r in rows[:-1]) + "\n")
    fewer_rows = build_model(env, "churn")
    assert fewer_rows.artifact.digest not in {changed.artifact.digest, built_project.churn.artifact.digest}
    assert fewer_rows.card["dataset"]["rows"] == 1999


def test_jsonl_dataset_trains_like_csv(built_project: Project, fresh_project: Path) -> None:
    header, rows = read_csv(fresh_project.parent / "data" / "customers.csv")
    table = read_table(fresh_project.parent / "data" / "customers.csv", "csv")
    lines = []
    for i in range(table.rows):
        lines.append(json.dumps({c: (float(table.values[c][i]) if table.kinds[c] == "numeric" else table.values[c][i]) for c in header}))
    path = fresh_project.parent / "data" / "customers.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = load_environment(fresh_project, "dev")
    dataset = dataclasses.replace(env.datasets["customers"], format="jsonl", source=str(path), source_digest=None)
    env = dataclasses.replace(env, datasets={**env.datasets, "customers": dataset})
    outcome = build_model(env, "churn")
    assert outcome.metrics == built_project.churn.metrics


def test_parquet_dataset_trains_like_csv(built_project: Project, fresh_project: Path) -> None:
    # GIVEN the churn data as a typed parquet file (integers, floats, strings), named by the spec
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = read_table(fresh_project.parent / "data" / "customers.csv", "csv")
    columns = {c: (table.values[c].tolist() if table.kinds[c] == "numeric" else list(table.values[c])) for c in table.columns}
    pq.write_table(pa.table(columns), fresh_project.parent / "data" / "customers.parquet")
    text = fresh_project.read_text()
    fresh_project.write_text(text.replace("    format: csv\n    source: data/customers.csv\n",
                                          "    format: parquet\n    source: data/customers.parquet\n", 1))
    # WHEN it is validated and built through the command line
    validate = run_cli("validate", str(fresh_project), "--no-policies")
    build = run_cli("build", "churn", str(fresh_project), "--json")
    # THEN both succeed, and the model is the one the CSV gives
    assert validate.returncode == 0, validate.stderr
    assert build.returncode == 0, build.stderr
    assert json.loads(build.stdout)["metrics"] == built_project.churn.metrics


def test_a_parquet_source_with_list_columns_is_a_clear_error(fresh_project: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = fresh_project.parent / "data" / "customers.parquet"
    pq.write_table(pa.table({"churned": [0, 1], "history": [[1, 2], [3]]}), path)
    env = load_environment(fresh_project, "dev")
    dataset = dataclasses.replace(env.datasets["customers"], format="parquet", source=str(path), source_digest=None)
    env = dataclasses.replace(env, datasets={**env.datasets, "customers": dataset})
    with pytest.raises(UsageError, match=r"column\(s\) history hold lists or structs"):
        build_model(env, "churn")


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        ("os.system", r"not a scikit-learn import path"),
        ("sklearn.base.np", r"not a scikit-learn estimator class"),
        ("sklearn.base.clone", r"not a scikit-learn estimator class"),
        ("sklearn.nothing_here.Model", r"does not exist in scikit-learn"),
        ("sklearn.utils.Bunch", r"not a scikit-learn estimator class"),
        ("sklearn.cluster.KMeans", r"neither a classifier nor a regressor"),
        # their constructors need arguments: refused from the class, never "internal error"
        ("sklearn.pipeline.Pipeline", r"neither a classifier nor a regressor"),
        ("sklearn.compose.ColumnTransformer", r"neither a classifier nor a regressor"),
        ("sklearn.frozen.FrozenEstimator", r"neither a classifier nor a regressor"),
        ("sklearn.ensemble.StackingRegressor", r"needs `estimators` \(estimator objects\)"),
    ],
)
def test_only_sklearn_predictors_are_imported(fresh_project: Path, estimator: str, message: str) -> None:
    env = load_environment(fresh_project, "dev")
    model = env.models["churn"]
    bad = dataclasses.replace(model, train=dataclasses.replace(model.train, estimator=estimator, params=()))
    with pytest.raises(UsageError, match=r"models\.churn\.train\.estimator: .*" + message):
        build_model(dataclasses.replace(env, models={"churn": bad}), "churn")


def _swap_churn_estimator(spec: Path, train: str) -> None:
    """Replace the churn model's train lines (estimator, target, params) with ``train``."""
    text = spec.read_text()
    old = "      estimator: sklearn.ensemble.RandomForestClassifier\n      target: churned\n      params: {n_estimators: 20, max_depth: 8}\n"
    assert old in text
    spec.write_text(text.replace(old, train))


@pytest.mark.parametrize("estimator", ["sklearn.pipeline.Pipeline", "sklearn.compose.ColumnTransformer", "sklearn.frozen.FrozenEstimator"])
def test_cli_build_of_a_non_predictor_is_refused_at_validation(fresh_project: Path, estimator: str) -> None:
    # GIVEN the churn model naming an estimator whose constructor needs arguments
    _swap_churn_estimator(fresh_project, f"      estimator: {estimator}\n      target: churned\n")
    # WHEN it is validated and built
    validate = run_cli("validate", str(fresh_project), "--no-policies")
    build = run_cli("build", "churn", str(fresh_project))
    # THEN both refuse it in one line at the estimator's position, exit 2, no internal error
    for result in (validate, build):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert re.match(r"^.*modelops\.yaml:\d+:\d+: models\.churn\.train\.estimator: .*neither a classifier nor a regressor", lines[0]), lines[0]
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_cli_build_that_runs_out_of_memory_names_the_model_and_the_fix(fresh_project: Path) -> None:
    # GIVEN an MLP whose 60000x60000 weights (29 GB) its raised limit allows, built with 6 GiB of address space
    _swap_churn_estimator(
        fresh_project,
        "      estimator: sklearn.neural_network.MLPClassifier\n      target: churned\n"
        "      params: {hidden_layer_sizes: [60000, 60000]}\n      limits: {hidden_layer_sizes: 120000}\n",
    )

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    # WHEN it is built
    result = subprocess.run([sys.executable, "-m", "modelops", "build", "churn", str(fresh_project)],
                            capture_output=True, text=True, timeout=300, preexec_fn=limit_memory)
    # THEN one line: the model, that memory ran out, what to lower; exit 1, no internal error
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: models.churn: the build ran out of memory training sklearn.neural_network.MLPClassifier")
    assert "hidden_layer_sizes" in lines[0] and "more memory" in lines[0]
    assert "internal error" not in result.stderr and "MemoryError" not in result.stderr


def test_validate_reads_estimator_facts_from_its_cache_without_importing_scikit_learn(fresh_project: Path, tmp_path: Path) -> None:
    # GIVEN an empty cache directory and the CLI in fresh interpreters
    code = (
        "import sys; from modelops.cli.main import main; rc = main(sys.argv[1:]);"
        " print('SKLEARN' if 'sklearn' in sys.modules else 'NO-SKLEARN', rc)"
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))

    def validate() -> str:
        result = subprocess.run([sys.executable, "-c", code, "validate", str(fresh_project), "--no-policies"],
                                capture_output=True, text=True, timeout=120, env=env)
        return result.stdout.strip().splitlines()[-1]

    # WHEN the spec is validated twice
    first, second = validate(), validate()
    # THEN the first run inspects the estimators (importing scikit-learn) and the second reads its cache
    assert first == "SKLEARN 0" and second == "NO-SKLEARN 0"
    assert list((tmp_path / "cache" / "modelops").glob("estimators-*-scikit-learn-*.json"))


def test_unknown_param_and_missing_target_are_usage_errors(fresh_project: Path) -> None:
    env = load_environment(fresh_project, "dev")
    model = env.models["churn"]
    bad = dataclasses.replace(model, train=dataclasses.replace(model.train, params=(("n_trees", 3),)))
    with pytest.raises(UsageError, match=r"models\.churn\.train\.params: .*n_trees"):
        build_model(dataclasses.replace(env, models={"churn": bad}), "churn")
    bad = dataclasses.replace(model, train=dataclasses.replace(model.train, target="cancelled"))
    with pytest.raises(UsageError, match=r"models\.churn\.train\.target: column 'cancelled' is not in the data"):
        build_model(dataclasses.replace(env, models={"churn": bad}), "churn")


def test_cli_build_reports_digest_and_metrics_and_errors_in_one_line(built_project: Project) -> None:
    ok = run_cli("build", "churn", str(built_project.spec), "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["digest"] == built_project.churn.artifact.digest
    assert data["cached"] is True
    assert data["metrics"] == built_project.churn.metrics
    assert {g["metric"]: g["result"] for g in data["gates"]} == {"accuracy": "pass", "roc_auc": "pass"}

    bad = run_cli("build", "nope", str(built_project.spec))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "model 'nope' is not declared" in bad.stderr
    assert "Traceback" not in bad.stderr


# ------------------------------------------------------------------------------ attach_artifacts


def test_attach_artifacts_uses_the_cached_build_without_building(built_project: Project) -> None:
    env = attach_artifacts(built_project.env, build=False)
    assert env.models["churn"].artifact == built_project.churn.artifact
    assert env.models["amount"].artifact == built_project.amount.artifact
    assert built_project.env.models["churn"].artifact is None  # the input is not modified


def test_attach_artifacts_without_a_build_says_to_run_build(fresh_project: Path) -> None:
    env = load_environment(fresh_project, "dev")
    with pytest.raises(UsageError, match=r"models\.(churn|amount): no build .*run `modelops build (churn|amount)`"):
        attach_artifacts(env, build=False)
    attached = attach_artifacts(env)
    assert attached.models["churn"].artifact.framework_version == "1.9-0"
    assert cached_build(env, "churn") is not None


def test_a_pinned_version_comes_from_the_store(built_project: Project) -> None:
    env = built_project.env
    pinned = dataclasses.replace(env.models["churn"], version=built_project.amount.artifact.digest)
    artifact = resolve_artifact(env, pinned, build=False)
    assert artifact == built_project.amount.artifact

    missing = "sha256:" + "ab" * 32
    with pytest.raises(UsageError) as info:
        resolve_artifact(env, dataclasses.replace(pinned, version=missing), build=False)
    assert str(info.value) == (
        f"models.churn.version {missing} is not in the artifact store (.modelops/artifacts); "
        "run `modelops build churn` on the commit that produced it"
    )


def test_framework_version_mismatch_is_refused(built_project: Project) -> None:
    env = built_project.env
    model = dataclasses.replace(env.models["churn"], framework_version="1.4-2-py312")
    with pytest.raises(UsageError, match=r"models\.churn\.framework_version: 1\.4-2-py312 does not match 1\.9-0"):
        resolve_artifact(env, model, build=False)
    same = dataclasses.replace(env.models["churn"], framework_version="1.9-0")
    assert resolve_artifact(env, same, build=False).framework_version == "1.9-0"


def test_prebuilt_artifact_takes_framework_from_its_card(built_project: Project, fresh_project: Path) -> None:
    root = fresh_project.parent
    prebuilt = root / "models" / "churn.tar.gz"
    prebuilt.parent.mkdir()
    prebuilt.write_bytes(Path(built_project.churn.artifact.path).read_bytes())
    env = load_environment(fresh_project, "dev")
    model = dataclasses.replace(env.models["churn"], train=None, artifact_source=str(prebuilt))
    artifact = resolve_artifact(env, model)
    assert artifact.digest == built_project.churn.artifact.digest
    assert artifact.framework_version == "1.9-0"
    assert card(artifact.digest, root)["metrics"] == built_project.churn.metrics


def test_prebuilt_artifact_without_card_needs_framework_version(fresh_project: Path) -> None:
    root = fresh_project.parent
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        payload = b"not really a model"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    prebuilt = root / "bare.tar.gz"
    prebuilt.write_bytes(raw.getvalue())
    env = load_environment(fresh_project, "dev")
    model = dataclasses.replace(env.models["churn"], train=None, artifact_source=str(prebuilt))
    with pytest.raises(UsageError, match=r"models\.churn\.artifact: .*no card\.json.*set models\.churn\.framework_version"):
        resolve_artifact(env, model)
    artifact = resolve_artifact(env, dataclasses.replace(model, framework_version="1.2-1"))
    assert artifact.framework_version == "1.2-1"
    assert artifact.digest == sha256(prebuilt)
    with pytest.raises(UsageError, match=r"no model card"):
        card(artifact.digest, root)


def test_a_scikit_learn_without_serving_image_is_refused(fresh_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a scikit-learn version SageMaker publishes no serving image for
    import modelops.ml.build as build_module

    monkeypatch.setattr(build_module, "sklearn_version", lambda: "1.11.0")
    env = load_environment(fresh_project, "dev")
    # THEN nothing is built: the artifact could never be served
    with pytest.raises(UsageError, match=r"scikit-learn 1\.11\.0 has no SageMaker serving image \(served: .*1\.9\)"):
        build_model(env, "churn")
    assert not (fresh_project.parent / ".modelops" / "artifacts").exists()


def test_classifier_without_probabilities_gets_roc_auc_from_its_decision_function(fresh_project: Path) -> None:
    env = load_environment(fresh_project, "dev")
    model = env.models["churn"]
    svc = dataclasses.replace(model, train=dataclasses.replace(model.train, estimator="sklearn.svm.LinearSVC", params=()))
    outcome = build_model(dataclasses.replace(env, models={"churn": svc}), "churn")
    pipeline = joblib.load(io.BytesIO(member(outcome.artifact.path, "model.joblib")))
    assert not hasattr(pipeline, "predict_proba")
    table = read_table(env.datasets["customers"].source, "csv")
    y = target_values(table, "churned", True)
    _, test_idx = split_indices(y, svc.train, True)
    X = table.matrix([f["name"] for f in outcome.card["features"]])[test_idx]
    assert outcome.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y[test_idx], pipeline.decision_function(X)), rel=1e-9)
    assert outcome.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y[test_idx], pipeline.predict(X)), rel=1e-9)
