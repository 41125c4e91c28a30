"""``modelops registry list``: a model's published versions, and which environment serves which.

Reads only: the model package versions of the model's group (digest, approval status and
the environments a promotion approved it for, metrics, lineage from their customer metadata) and, per environment, the variants of its endpoint
(``primary``, ``canary``, ``shadow``) with the artifact each variant's SageMaker model reads.

Example::

    listing = list_versions(environments, "churn-classifier", registry)
    listing.versions[0]["served_by"]       # ['staging/primary', 'prod/primary']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from modelops.components import naming
from modelops.errors import UsageError
from modelops.registry.store import APPROVED_PREFIX, DIGEST_KEY, METRIC_PREFIX, Registry
from modelops.spec.resolved import Environment

#: the digest in an artifact URL: models/<model>/<hex>/model.tar.gz (registry or environment bucket)
_DIGEST_IN_URL = re.compile(r"/models/[^/]+/([0-9a-f]{64})/model\.tar\.gz$")


@dataclass(frozen=True)
class Listing:
    """The published versions of one model, oldest first, each with where it is served."""

    model: str
    group: str
    where: str
    versions: list[dict[str, Any]]
    #: "env/variant" -> digest served (None: the artifact is not a ModelOps package URL)
    served: dict[str, str | None]
    #: environments whose endpoint could not be read, and why
    unreadable: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "group": self.group, "where": self.where, "versions": self.versions,
                "served": self.served, "unreadable": self.unreadable}


def served_variants(clients: Any, env: Environment, model: str) -> dict[str, str | None]:
    """variant -> digest served by ``model``'s endpoint in ``env`` ({} when there is no endpoint)."""
    sm = clients.client("sagemaker")
    try:
        endpoint = sm.describe_endpoint(EndpointName=naming.endpoint_name(env.project, env.env, model))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return {}
        raise
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    out: dict[str, str | None] = {}
    for variant in [*config.get("ProductionVariants", []), *config.get("ShadowProductionVariants", [])]:
        described = sm.describe_model(ModelName=variant["ModelName"])
        url = (described.get("PrimaryContainer") or {}).get("ModelDataUrl", "")
        found = _DIGEST_IN_URL.search(url)
        out[variant["VariantName"]] = f"sha256:{found.group(1)}" if found else None
    return out


def list_versions(environments: dict[str, Environment], model: str, registry: Registry) -> Listing:
    """Every published version of ``model`` with its metrics, lineage and the variants serving it."""
    any_env = next(iter(environments.values()))
    if model not in any_env.models:
        known = ", ".join(sorted(any_env.models)) or "none"
        raise UsageError(f"model {model!r} is not declared in {any_env.spec_file or 'the spec'} (models: {known})")
    registry.require()
    served: dict[str, str | None] = {}
    unreadable: dict[str, str] = {}
    for name, env in sorted(environments.items()):
        try:
            for variant, digest in served_variants(registry.clients, env, model).items():
                served[f"{name}/{variant}"] = digest
        except ClientError as exc:
            unreadable[name] = str(exc.response.get("Error", {}).get("Code") or exc)
    versions = []
    for described in registry.versions(model):
        meta = dict(described.get("CustomerMetadataProperties") or {})
        digest = meta.pop(DIGEST_KEY, None)
        meta.pop("modelops:model", None)
        approved = {k.removeprefix(APPROVED_PREFIX): meta.pop(k) for k in sorted(meta) if k.startswith(APPROVED_PREFIX)}
        metrics = {k.removeprefix(METRIC_PREFIX): float(v) for k, v in meta.items() if k.startswith(METRIC_PREFIX)}
        lineage = {k.removeprefix("modelops:"): v for k, v in meta.items() if k.startswith("modelops:")}
        created = described.get("CreationTime")
        versions.append({
            "version": described.get("ModelPackageVersion"),
            "digest": digest,
            "approval": described.get("ModelApprovalStatus"),
            "approved_for": approved,
            "created": created.isoformat() if hasattr(created, "isoformat") else created,
            "arn": described.get("ModelPackageArn"),
            "metrics": metrics,
            "lineage": lineage,
            "served_by": sorted(k for k, d in served.items() if d is not None and d == digest),
        })
    return Listing(model, registry.group(model), registry.where, versions, served, unreadable)
