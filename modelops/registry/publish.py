"""``modelops publish``: a built package into the project's registry, and its version into the catalogue.

Publishing ``MODEL`` takes the artifact the environment resolves for it (its pin, else the
cached build of its train spec and data, else its ``artifact:`` file; never a new build) and:

1. writes its ``model.tar.gz``, ``card.json`` and ``baseline.json`` under
   ``models/<model>/<hex>/`` of the registry bucket, each only when absent (a key that
   holds other bytes is refused), and the training data the card names under
   ``datasets/<dataset>/<hex>/`` when the local source still has that digest;
2. registers one model package version per digest (``PendingManualApproval``) in the
   model's group, with the card's metrics and the lineage in its customer metadata: the
   dataset's digest and the S3 object version of its copy, the spec commit, the training
   parameters, the framework version.

The same digest again writes nothing and registers nothing (``PublishOutcome.changed``).

Example::

    outcome = publish(env, "churn-classifier", Path("."), Registry.at(clients, env.project))
    outcome.package_version, outcome.changed        # (1, True)
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.components import naming, serving_images
from modelops.errors import UsageError
from modelops.files import file_digest
from modelops.ml import artifacts
from modelops.ml.artifacts import resolve_artifact
from modelops.ml.package import read_member
from modelops.promote import git
from modelops.registry.store import DIGEST_KEY, METRIC_PREFIX, Registry, fits_metadata
from modelops.spec.resolved import Artifact, Environment

CONTENT_TYPES = ["text/csv", "application/json"]
#: models published at once (each model's versions in turn, so its version numbers follow
#: the order primary, canary, shadow); every call is a few small S3 and SageMaker requests
PUBLISH_WORKERS = 8


@dataclass(frozen=True)
class PublishOutcome:
    """What publishing one model did: objects written, the package version, whether anything changed."""

    model: str
    digest: str
    bucket: str
    package_key: str
    package_version: int | None
    package_arn: str
    #: keys written by this run (empty: every one was there already)
    written: tuple[str, ...] = ()
    #: whether this run registered the package version
    registered: bool = False
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.written) or self.registered

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "digest": self.digest, "bucket": self.bucket, "package_key": self.package_key,
                "package_version": self.package_version, "package_arn": self.package_arn,
                "written": list(self.written), "registered": self.registered, "changed": self.changed,
                "lineage": dict(self.lineage)}


def _value(text: str) -> str:
    """A metadata value SageMaker accepts (at most 256 letters, digits, spaces and ``_.:/=+-@``):
    any other becomes its sha256, and the card, a copy of which is beside the package, has it whole."""
    if fits_metadata(text):
        return text
    return f"sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def _params(params: Any) -> str:
    """Training parameters as ``name=value`` pairs (``C=0.5 max_iter=200``), sorted by name."""
    if not isinstance(params, dict):
        return json.dumps(params, sort_keys=True)
    return " ".join(f"{name}={'none' if value is None else value}" for name, value in sorted(params.items()))


def _model(env: Environment, name: str) -> Any:
    model = env.models.get(name)
    if model is None:
        known = ", ".join(sorted(env.models)) or "none"
        raise UsageError(f"model {name!r} is not declared in {env.spec_file or 'the spec'} (models: {known})")
    return model


def publish(env: Environment, name: str, root: Path, registry: Registry, digest: str | None = None, *,
            commit: str | None = None) -> PublishOutcome:
    """Publish the artifact ``env`` resolves for model ``name`` to ``registry`` (see the module docstring).

    ``digest``: publish that version of the model from the local store instead (a canary's
    or shadow's pin); it must be there. ``commit``: the spec commit of the lineage, when the
    caller looked it up already ("" outside a repository; None: look it up).
    """
    model = _model(env, name)
    if digest is None:
        # an attached artifact (up's environment) is what is served; else the one env resolves
        artifact = model.artifact or resolve_artifact(env, model, build=False, root=root)
    else:
        path = artifacts.lookup(digest, root)
        framework = artifacts.framework_of(digest, root) or model.framework_version
        if path is None or not framework:
            raise UsageError(f"models.{name}: version {digest} is not in the local store with a card naming its "
                             f"framework version ({artifacts.STATE_DIR}/{artifacts.STORE_DIR}); build it or copy it "
                             "out of the registry first")
        artifact = Artifact(str(path), digest, framework)
    digest = artifact.digest
    registry.require()
    if not registry.group_exists(name):
        raise UsageError(f"the registry has no model package group {registry.group(name)} for models.{name}; "
                         "deploy the registry stack again (`pulumi up --stack registry`): it has one group per model")
    card_bytes = read_member(artifact.path, "card.json")
    card: dict[str, Any] = json.loads(card_bytes.decode("utf-8")) if card_bytes else {}
    baseline = read_member(artifact.path, "baseline.json")

    written: list[str] = []

    def put(key: str, data: bytes, content_type: str) -> str | None:
        what, version = registry.put_absent(key, data, content_type)
        if what == "written":
            written.append(key)
        return version

    package_key = naming.registry_key(name, digest)
    put(package_key, Path(artifact.path).read_bytes(), "application/gzip")
    if card_bytes is not None:
        put(naming.registry_key(name, digest, "card.json"), card_bytes, "application/json")
    if baseline is not None:
        put(naming.registry_key(name, digest, "baseline.json"), baseline, "application/json")
    lineage = _lineage(env, model, card, root, put, registry, served=artifact.framework_version, commit=commit)

    found = registry.version_of(name, digest)
    if found is not None:
        return PublishOutcome(name, digest, registry.bucket, package_key, found.get("ModelPackageVersion"),
                              found["ModelPackageArn"], tuple(written), False, lineage)
    metadata = {DIGEST_KEY: digest, "modelops:model": name, **lineage}
    for metric, value in sorted((card.get("metrics") or {}).items()):
        metadata[f"{METRIC_PREFIX}{metric}"] = repr(float(value))
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": registry.group(name),
        "ModelPackageDescription": f"{name} {digest}"[:1024],
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [{"Image": serving_images.image_uri(env.region, artifact.framework_version),
                            "ModelDataUrl": registry.uri(package_key)}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        "CustomerMetadataProperties": {k: _value(v) for k, v in metadata.items()},
    }
    if card_bytes is not None:
        kwargs["ModelMetrics"] = {"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": registry.uri(naming.registry_key(name, digest, "card.json"))}}}
    created = registry.clients.client("sagemaker").create_model_package(**kwargs)
    arn = created["ModelPackageArn"]
    described = registry.clients.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return PublishOutcome(name, digest, registry.bucket, package_key, described.get("ModelPackageVersion"), arn,
                          tuple(written), True, lineage)


def _lineage(env: Environment, model: Any, card: dict[str, Any], root: Path, put: Any,
             registry: Registry, *, served: str | None = None, commit: str | None = None) -> dict[str, str]:
    """What the version was made from: data (digest, the registry's copy and its object version),
    spec commit, training parameters, framework (``served``: the serving image's, when neither
    the card nor the spec names one; SageMaker refuses an empty metadata value) and estimator."""
    trained = card.get("dataset") or {}
    data_digest = str(trained.get("digest") or "")
    out = {
        "modelops:framework-version": str(card.get("framework_version") or model.framework_version or served or "unknown"),
        "modelops:spec-commit": (git.head_commit(root) if commit is None else commit) or "unknown: not a git repository",
        "modelops:dataset": model.dataset,
        "modelops:dataset-digest": data_digest or "unknown: the package has no card",
    }
    if card.get("estimator"):
        out["modelops:estimator"] = str(card["estimator"])
    if "params" in card:
        out["modelops:params"] = _params(card["params"])
    dataset = env.datasets.get(model.dataset)
    source = Path(dataset.source) if dataset is not None and dataset.source else None
    if data_digest.startswith("sha256:") and source is not None and source.is_file() and file_digest(source) == data_digest:
        key = naming.registry_data_key(model.dataset, data_digest, source.name)
        version = put(key, source.read_bytes(), "application/octet-stream")
        out["modelops:dataset-object"] = registry.uri(key)
        out["modelops:dataset-object-version"] = str(version or "unknown")
    elif data_digest:
        out["modelops:dataset-object"] = "none: the local data is not the data it was trained on"
    return out


def publish_served(env: Environment, root: Path, registry: Registry) -> list[PublishOutcome]:
    """Publish every version ``env`` serves (artifacts attached): each model's primary, canary
    and shadow, from the local store. What local ``up`` does before the models are created,
    so that the program's registry lookups find them; idempotent, as :func:`publish`.

    Example::

        [o.digest for o in publish_served(env, Path("."), registry) if o.changed]
    """
    def versions(name: str) -> list[tuple[str, str | None]]:
        model = env.models[name]
        primary = model.artifact.digest if model.artifact is not None else None
        extra = [p.version for p in (model.serving.canary, model.serving.shadow) if p is not None]
        return [(name, None)] + [(name, v) for v in dict.fromkeys(extra) if v != primary]

    return publish_all(env, root, registry, [job for name in sorted(env.models) for job in versions(name)])


def publish_all(env: Environment, root: Path, registry: Registry,
                jobs: list[tuple[str, str | None]]) -> list[PublishOutcome]:
    """:func:`publish` of every ``(model, digest or None)`` in ``jobs``, models side by side
    (:data:`PUBLISH_WORKERS`), each model's own in the order given; outcomes in that order.
    The first failure is raised once the publishes under way have ended (no other starts)."""
    commit = git.head_commit(root) or ""
    by_model: dict[str, list[str | None]] = {}
    for name, digest in jobs:
        by_model.setdefault(name, []).append(digest)

    def one(name: str) -> list[PublishOutcome]:
        return [publish(env, name, root, registry, digest, commit=commit) for digest in by_model[name]]

    with ThreadPoolExecutor(max_workers=PUBLISH_WORKERS, thread_name_prefix="modelops-publish") as pool:
        futures = {name: pool.submit(one, name) for name in by_model}
        try:
            done = {name: future.result() for name, future in futures.items()}
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    position = {name: 0 for name in by_model}
    out = []
    for name, _ in jobs:
        out.append(done[name][position[name]])
        position[name] += 1
    return out
