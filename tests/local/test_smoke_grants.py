"""The smoke checks' reading of an IAM policy (moto enforces none): a grant with an
``s3:prefix`` condition allows a list of that prefix only."""

from __future__ import annotations

import json

import pytest

from modelops.components.monitor_job import job_config
from modelops.graph.render import render
from modelops.graph.resource_types import ROLE_POLICY
from modelops.local.smoke import _granted
from tests.components.helpers import load, one, tiny_artifact
from tests.helpers import ROOT

MODEL = "churn-classifier"


@pytest.fixture(scope="module")
def job_role(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    """The churn dev monitor job role's policy, its dataset bucket's ARN and capture prefix."""
    env = load(ROOT / "modelops.yaml", "dev", tiny_artifact(tmp_path_factory.mktemp("artifact")))
    graph = render(env)
    policy = one(p for p in graph.by_type(ROLE_POLICY) if p.inputs["role"].endswith("-mon-job"))
    document = json.loads(policy.inputs["policy"]) if isinstance(policy.inputs["policy"], str) else policy.inputs["policy"]
    monitors = tuple(m for m in env.monitors.values() if m.model == MODEL and m.is_job)
    prefix = job_config(env.project, env.env, env.models[MODEL], monitors)["capture_prefix"]
    return document, "arn:aws:s3:::churn-dev-customers-123456789012", prefix


def test_the_job_role_may_list_its_capture_prefix_and_its_hours(job_role: tuple[dict, str, str]) -> None:
    document, bucket, prefix = job_role
    # WHEN the lists the stats step makes are checked with their s3:prefix
    # THEN both are allowed: the capture prefix (its variants) and an hour partition below it
    assert _granted(document, "s3:ListBucket", bucket, {"s3:prefix": prefix})
    assert _granted(document, "s3:ListBucket", bucket, {"s3:prefix": f"{prefix}primary/2026/12/03/10/"})


def test_a_list_outside_the_prefix_condition_is_not_granted(job_role: tuple[dict, str, str]) -> None:
    document, bucket, _ = job_role
    # GIVEN the job role's ListBucket, conditioned on its prefixes WHEN another prefix is asked for
    # THEN it is refused, though the statement's resource is the bucket
    assert not _granted(document, "s3:ListBucket", bucket, {"s3:prefix": "datasets/"})
    assert not _granted(document, "s3:ListBucket", bucket, {"s3:prefix": ""})
    # AND without a request context the condition is not read (the input checks' use)
    assert _granted(document, "s3:ListBucket", bucket)


def test_an_unknown_condition_does_not_count_as_granted() -> None:
    document = {"Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::b",
                               "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}
    assert not _granted(document, "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "capture/"})
