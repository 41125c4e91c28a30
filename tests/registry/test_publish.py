"""``publish`` and fresh-runner pins against the TLS emulator: what lands in the registry, and what is refused."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelops.components import naming
from modelops.errors import ApplyError, SpecError, UsageError
from modelops.ml import artifacts
from modelops.registry import fetch_pins, publish, publish_all
from modelops.spec.envs import load_environment
from tests.helpers import Emulator
from tests.local.helpers import copy_project
from tests.registry.helpers import registry_at

pytestmark = [pytest.mark.aws]

MODEL = "churn-classifier"


@pytest.fixture
def project(tmp_path: Path, artifact_root: Path) -> Path:
    """A copy of the churn example with its model built (once per session)."""
    return copy_project("churn", tmp_path / "project", artifact_root)


def test_publish_writes_content_addressed_objects_and_one_version_then_nothing(emulator: Emulator, project: Path) -> None:
    env = load_environment(project, "dev")
    root = project.parent
    registry = registry_at(emulator, env, root)
    # WHEN the built model is published
    first = publish(env, MODEL, root, registry)
    # THEN package, card, baseline and the training data were written under keys carrying their digest
    digest = first.digest
    hexpart = digest.removeprefix("sha256:")
    card = registry.read(naming.registry_key(MODEL, digest, "card.json"))
    assert set(first.written) == {
        f"models/{MODEL}/{hexpart}/model.tar.gz", f"models/{MODEL}/{hexpart}/card.json",
        f"models/{MODEL}/{hexpart}/baseline.json", first.lineage["modelops:dataset-object"].split("/", 3)[3]}
    assert registry.digest_of(first.package_key) == digest
    # AND one package version awaits approval, with the card's metrics and the lineage
    (version,) = list(registry.versions(MODEL))
    assert version["ModelApprovalStatus"] == "PendingManualApproval" and first.registered
    meta = version["CustomerMetadataProperties"]
    assert meta["modelops:digest"] == digest
    # every value is one SageMaker accepts: at most 256 of letters, digits, spaces and _.:/=+-@
    refused = {k: v for k, v in meta.items() if not re.fullmatch(r"[\w\s.:/=+\-@]{0,256}", v)}
    assert not refused, refused
    assert float(meta["metric:accuracy"]) > 0.5 and b'"accuracy"' in card
    data_digest = meta["modelops:dataset-digest"]
    assert data_digest.startswith("sha256:") and data_digest.removeprefix("sha256:") in meta["modelops:dataset-object"]
    assert meta["modelops:dataset-object-version"] not in ("", "unknown")
    assert meta["modelops:framework-version"] == "1.9-0" and "n_estimators=100" in meta["modelops:params"].split()
    assert version["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == registry.uri(first.package_key)
    # WHEN it is published again THEN nothing is written and no version registered
    again = publish(env, MODEL, root, registry)
    assert not again.changed and again.written == () and again.package_version == first.package_version
    assert len(list(registry.versions(MODEL))) == 1


def test_publish_all_keeps_each_models_order_and_raises_the_first_failure(emulator: Emulator, project: Path) -> None:
    env = load_environment(project, "dev")
    root = project.parent
    registry = registry_at(emulator, env, root)
    # WHEN one model's version is published twice in one batch THEN in turn: the second finds the first
    first, again = publish_all(env, root, registry, [(MODEL, None), (MODEL, None)])
    assert first.registered and not again.changed and again.package_version == first.package_version
    # WHEN a batch holds a version nobody built THEN publishing stops with that model's error
    with pytest.raises(UsageError, match=f"models.{MODEL}: version sha256:1{{64}} is not in the local store"):
        publish_all(env, root, registry, [(MODEL, None), (MODEL, "sha256:" + "1" * 64)])
    assert len(list(registry.versions(MODEL))) == 1


def test_a_key_holding_other_bytes_is_refused_and_nothing_registered(emulator: Emulator, project: Path) -> None:
    env = load_environment(project, "dev")
    root = project.parent
    registry = registry_at(emulator, env, root)
    digest = artifacts.resolve_artifact(env, env.models[MODEL], build=False, root=root).digest
    # GIVEN other bytes at the package's key
    s3 = emulator.client("s3")
    s3.put_object(Bucket=registry.bucket, Key=naming.registry_key(MODEL, digest), Body=b"not the package")
    # WHEN publishing THEN it is refused, naming the key and both digests
    with pytest.raises(ApplyError, match=r"already holds other bytes \(sha256:[0-9a-f]{64}, not " + digest):
        publish(env, MODEL, root, registry)
    assert list(registry.versions(MODEL)) == []


def test_the_emulator_denies_deleting_a_published_object_or_version(emulator: Emulator, project: Path) -> None:
    env = load_environment(project, "dev")
    root = project.parent
    registry = registry_at(emulator, env, root)
    published = publish(env, MODEL, root, registry)
    s3 = emulator.client("s3")
    head = s3.head_object(Bucket=registry.bucket, Key=published.package_key)
    for kwargs in ({}, {"VersionId": head["VersionId"]}):
        with pytest.raises(ClientError, match=r"AccessDenied|\(403\)"):
            s3.delete_object(Bucket=registry.bucket, Key=published.package_key, **kwargs)
    assert registry.digest_of(published.package_key) == published.digest


def test_a_fresh_runner_copies_pins_out_of_the_registry_and_refuses_unknown_ones(
        emulator: Emulator, project: Path, tmp_path: Path) -> None:
    env = load_environment(project, "dev")
    registry = registry_at(emulator, env, project.parent)
    digest = publish(env, MODEL, project.parent, registry).digest
    # GIVEN a fresh checkout (no .modelops) whose staging pins the published version
    fresh = tmp_path / "fresh"
    shutil.copytree(project.parent, fresh, ignore=shutil.ignore_patterns(".modelops"))
    overlay = fresh / "stacks" / "staging.yaml"
    overlay.write_text(f'models:\n  {MODEL}:\n    version: "{digest}"\n')
    staging = load_environment(fresh / "modelops.yaml", "staging")
    assert artifacts.lookup(digest, fresh) is None
    # WHEN its pins are fetched THEN the package is in the local store, its digest checked
    fetched = fetch_pins(staging, fresh, lambda: registry)
    assert [(f.model, f.digest) for f in fetched] == [(MODEL, digest)]
    path = artifacts.lookup(digest, fresh)
    assert path is not None and "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == digest
    # AND a second fetch has nothing to do
    assert fetch_pins(staging, fresh, lambda: registry) == []
    # GIVEN a canary pinned to a version nobody published
    unknown = "sha256:" + "1" * 64
    overlay.write_text(f'models:\n  {MODEL}:\n    version: "{digest}"\n    serving:\n      canary:\n'
                       f'        version: "{unknown}"\n')
    staging = load_environment(fresh / "modelops.yaml", "staging")
    # THEN the refusal names the overlay position, the model and the digest
    with pytest.raises(SpecError, match=rf"staging.yaml:6:18: models.{MODEL}.serving.canary.version: {MODEL} canary version "
                                        rf"{unknown} is neither in .modelops/artifacts nor in the registry "
                                        rf"\(s3://churn-registry-123456789012\); publish it"):
        fetch_pins(staging, fresh, lambda: registry)


def test_a_pin_another_models_artifact_file_holds_needs_no_registry(tmp_path: Path) -> None:
    # GIVEN a fresh project whose canary pins the package a second model serves from its
    # `artifact:` file (how the benchmark spec brings a canary's version into the store)
    from tests.components.helpers import tiny_artifact

    (tmp_path / "stacks").mkdir()
    package = tiny_artifact(tmp_path / "packages", b"canary weights")
    base = tiny_artifact(tmp_path, b"primary weights")
    (tmp_path / "modelops.yaml").write_text(
        "apiVersion: modelops/v1\nproject: tiny\nowner: a@example.com\nregion: eu-west-1\n"
        "datasets:\n  events: {format: csv}\n"
        "models:\n"
        "  ranker:\n    dataset: events\n    artifact: model.tar.gz\n    framework_version: 1.9-0\n"
        f"    serving: {{canary: {{version: '{package.digest}'}}}}\n"
        "  canary-source:\n    dataset: events\n    artifact: packages/model.tar.gz\n    framework_version: 1.9-0\n")
    env = load_environment(tmp_path / "modelops.yaml", "dev")
    assert base.digest != package.digest and artifacts.lookup(package.digest, tmp_path) is None
    # WHEN its pins are fetched without any registry THEN nothing is missing, nothing copied
    assert fetch_pins(env, tmp_path, None) == []
    assert artifacts.lookup(package.digest, tmp_path) is not None
