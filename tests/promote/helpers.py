"""Helpers of the promotion tests (tests/promote/): deployed-environment evidence in the loopback moto server.

The evidence is created with plain boto3 calls under the physical names of
``components/naming.py`` — exactly what ``modelops up`` provisions for an environment's
model: the artifact object in the artifacts bucket, the SageMaker model serving it, its
endpoint configuration and endpoint, and one CloudWatch alarm per monitor — and the
version is published to the project's registry there by ``modelops.registry.publish``
(the metrics gate reads the registry, not the local card).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from modelops.components import naming
from modelops.registry import Registry, publish
from modelops.spec.resolved import Environment
from tests.helpers import FIXTURES, Moto

STACKS = FIXTURES / "promote" / "stacks"
MODEL = "churn-classifier"
PIN_BEFORE = "sha256:" + "1" * 64
SOAKED = timedelta(hours=25)

ACCOUNT = "123456789012"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"


class _Clients:
    """``clients.client(service)`` of the moto server in one region, as the registry takes them."""

    def __init__(self, moto: Moto, region: str) -> None:
        self.moto, self.region, self.url = moto, region, moto.url

    def client(self, service: str):
        return self.moto.client(service, self.region)


def registry_of(moto: Moto, env: Environment) -> Registry:
    """The project's registry in the moto server: its bucket and the model package groups of ``env``'s models."""
    registry = Registry.at(_Clients(moto, env.region), env.project, moto.url)
    s3 = moto.client("s3", env.region)
    if not registry.exists():
        s3.create_bucket(Bucket=registry.bucket, CreateBucketConfiguration={"LocationConstraint": env.region})
    sm = moto.client("sagemaker", env.region)
    for name in env.models:
        if not registry.group_exists(name):
            sm.create_model_package_group(ModelPackageGroupName=registry.group(name))
    return registry


def publish_version(moto: Moto, env: Environment, model: str, root: Path) -> Registry:
    """``modelops publish MODEL`` of ``env``'s artifact to the registry in the moto server."""
    registry = registry_of(moto, env)
    publish(env, model, root, registry)
    return registry


def deploy_evidence(moto: Moto, env: Environment, model: str, artifact: bytes, *, alarms: bool = True,
                    published_from: Path | None = None) -> str:
    """Provision what ``up`` makes for ``model`` in ``env`` serving ``artifact``; returns its digest.

    With ``published_from`` (the project root) the version is also published to the registry.
    """
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    if published_from is not None:
        publish_version(moto, env, model, published_from)
    s3 = moto.client("s3", env.region)
    # what up serves: the registry's object (components/model.py)
    bucket = naming.registry_bucket_name(env.project, ACCOUNT)
    key = naming.registry_key(model, digest)
    try:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": env.region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=artifact)
    sm = moto.client("sagemaker", env.region)
    sm_model = naming.versioned_name(env.project, env.env, model, digest.removeprefix("sha256:"))
    sm.create_model(
        ModelName=sm_model,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{key}"},
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{naming.role_name(env.project, env.env, model)}",
    )
    sm.create_endpoint_config(
        EndpointConfigName=sm_model,
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": sm_model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=naming.endpoint_name(env.project, env.env, model), EndpointConfigName=sm_model)
    if alarms:
        for monitor in env.monitors.values():
            if monitor.model == model:
                put_alarm(moto, env, monitor.name)
    return digest


def put_alarm(moto: Moto, env: Environment, monitor: str) -> str:
    name = naming.alarm_name(env.project, env.env, monitor)
    moto.client("cloudwatch", env.region).put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=5,
        Threshold=250000,
        ComparisonOperator="GreaterThanThreshold",
    )
    return name


def set_alarm(moto: Moto, env: Environment, monitor: str, state: str, reason: str = "test") -> str:
    name = naming.alarm_name(env.project, env.env, monitor)
    moto.client("cloudwatch", env.region).set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    return name


def git(project: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=tester@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=project, capture_output=True, text=True, check=True, timeout=60,
    )
    return run.stdout.strip()


def commit(project: Path, message: str) -> str:
    git(project, "add", "-A")
    git(project, "commit", "-q", "--allow-empty", "-m", message)
    return git(project, "rev-parse", "HEAD")


def later(delta: timedelta) -> datetime:
    return datetime.now(timezone.utc) + delta


def modelops(project: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", **env_vars}
    return subprocess.run(
        [sys.executable, "-m", "modelops", *args], cwd=project, capture_output=True, text=True, timeout=180, env=env
    )
