"""Storage of every example environment: versioned, encrypted, private, TLS-only, retained."""

from __future__ import annotations

from itertools import product

import pytest
from modelops.graph.resource_types import KMS_KEY as KEY

from modelops.graph.render import render
from tests.components.helpers import (
    BUCKET,
    CASE_IDS,
    EXAMPLE_CASES,
    by_name,
    children_of,
    load,
    one,
    statements,
    tiny_artifact,
    variants_spec,
)

from modelops.components import naming


def settings(graph, bucket, kind):
    parent = one(r for r in graph.registrations if r.urn == bucket.parent)
    return one(children_of(graph, parent, f"aws:s3/{kind[0].lower() + kind[1:]}:{kind}"))


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_every_bucket_is_versioned_encrypted_private_and_tls_only(renders, spec, env_name):
    # GIVEN an example environment, WHEN rendered
    env, graph = renders.get(spec, env_name)
    buckets = graph.by_type(BUCKET)
    # THEN one bucket per dataset plus the artifact bucket, each named with the account
    assert sorted(b.inputs["bucket"] for b in buckets) == sorted(
        f"{env.project}-{env.env}-{d}-123456789012" for d in [*env.datasets, "artifacts"]
    )
    key_arn = one(graph.by_type(KEY)).outputs["arn"]
    for bucket in buckets:
        versioning = settings(graph, bucket, "BucketVersioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        rule = settings(graph, bucket, "BucketServerSideEncryptionConfiguration").inputs["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
        assert rule["bucketKeyEnabled"] is True
        block = settings(graph, bucket, "BucketPublicAccessBlock").inputs
        assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
        assert settings(graph, bucket, "BucketOwnershipControls").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
        (deny,) = statements(settings(graph, bucket, "BucketPolicy").inputs["policy"])
        arn = f"arn:aws:s3:::{bucket.inputs['bucket']}"
        assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*" and deny["Principal"] == "*"
        assert sorted(deny["Resource"]) == [arn, f"{arn}/*"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        lifecycle = settings(graph, bucket, "BucketLifecycleConfiguration").inputs["rules"][0]
        assert lifecycle["status"] == "Enabled"
        assert lifecycle["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_protected_environments_protect_and_retain_storage_and_key(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    stateful = [*graph.by_type(BUCKET), *graph.by_type(KEY)]
    assert len(stateful) == len(env.datasets) + 2
    for reg in stateful:
        assert (reg.protect, reg.retain_on_delete) == (env.protect, env.protect), reg.urn
    # the settings resources are not protected: they can be changed and replaced freely
    assert not any(r.protect for r in graph.resources if r.type not in (BUCKET, KEY))
    assert env.protect is (env_name == "prod")


def test_key_rotates_and_lets_cloudwatch_use_it_for_this_account_only(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    key = one(graph.by_type(KEY))
    assert key.inputs["enableKeyRotation"] is True
    sts = {s["Sid"]: s for s in statements(key.inputs["policy"])}
    assert sts["AccountAdministersKey"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    service = sts["AlarmsPublishToEncryptedTopics"]
    assert "cloudwatch.amazonaws.com" in service["Principal"]["Service"]
    assert service["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert "*" not in service["Action"]
    alias = one(graph.by_type("aws:kms/alias:Alias"))
    assert alias.inputs["name"] == "alias/churn-dev" and alias.inputs["targetKeyId"] == key.outputs["keyId"]


def test_lifecycle_follows_retention_and_sse_s3_uses_aes256(tmp_path):
    # GIVEN the variants spec (encryption: sse-s3; events retains 30/60/365 days)
    env = load(variants_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    graph = render(env)
    bucket = by_name(graph, BUCKET, "variants-dev-events-123456789012", key="bucket")
    rule = settings(graph, bucket, "BucketLifecycleConfiguration").inputs["rules"][0]
    # THEN the lifecycle is the retention: noncurrent expiry, archive to Glacier IR, expiry
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rule["transitions"] == [{"days": 60, "storageClass": "GLACIER_IR"}]
    assert rule["expiration"] == {"days": 365}
    # AND without an environment key every bucket uses S3-managed keys; the one key is the topics'
    assert [k.name for k in graph.by_type(KEY)] == ["variants-dev-topics-key"]
    for b in graph.by_type(BUCKET):
        sse = settings(graph, b, "BucketServerSideEncryptionConfiguration").inputs["rules"][0]
        assert sse["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    # AND a bucket with no archive/expiry declares none
    features = by_name(graph, BUCKET, "variants-dev-features-123456789012", key="bucket")
    plain = settings(graph, features, "BucketLifecycleConfiguration").inputs["rules"][0]
    assert "transitions" not in plain and "expiration" not in plain


def test_protected_sse_s3_environment_protects_its_buckets(tmp_path):
    # GIVEN the variants spec's prod overlay (protect: true, no KMS key under sse-s3)
    env = load(variants_spec(tmp_path), "prod", tiny_artifact(tmp_path / "a"))
    graph = render(env)
    buckets = graph.by_type(BUCKET)
    assert len(buckets) == 3 and [k.name for k in graph.by_type(KEY)] == ["variants-prod-topics-key"]
    assert all(b.protect and b.retain_on_delete for b in buckets)


# ---------------------------------------------------------------- derived names are injective

#: spec names built of the same pieces, so that only the separators tell them apart
PROJECTS = ("aa", "bb", "aa-bb", "bb-cc", "aa-bb-cc")
ENVS = ("bb", "cc", "dev")
ENTITIES = ("cc", "bb-cc", "cc-dd", "cc-artifacts", "artifacts", "dev-cc")
ACCOUNT = "123456789012"
DERIVED = {
    "bucket": lambda p, e, x: naming.bucket_name(p, e, x, ACCOUNT),
    "endpoint": naming.endpoint_name,
    "versioned": lambda p, e, x: naming.versioned_name(p, e, x, "0" * 8),
    "role": naming.role_name,
    "package group": naming.package_group_name,
    "alarm": naming.alarm_name,
    "topic": naming.topic_name,
}


def test_the_issues_two_projects_get_different_buckets():
    # project aa-bb env cc, and project aa env bb with a dataset cc-artifacts, used to share one name
    assert naming.artifacts_bucket_name("aa-bb", "cc", ACCOUNT) != naming.bucket_name("aa", "bb", "cc-artifacts", ACCOUNT)
    assert naming.artifacts_bucket_name("aa-bb", "cc", ACCOUNT) == f"aa-bb--cc-artifacts-{ACCOUNT}"
    # and a project without a hyphen keeps the names it always had (nothing deployed is renamed)
    assert naming.bucket_name("churn", "prod", "customers", ACCOUNT) == f"churn-prod-customers-{ACCOUNT}"


@pytest.mark.parametrize("kind", sorted(DERIVED))
def test_every_derived_name_is_injective(kind):
    # GIVEN every (project, env, entity) of names built from the same pieces
    derive = DERIVED[kind]
    seen: dict[str, tuple[str, str, str]] = {}
    for parts in product(PROJECTS, ENVS, ENTITIES):
        name = derive(*parts)
        # THEN no two of them derive the same AWS name
        assert seen.setdefault(name, parts) == parts, f"{kind} {name}: {seen[name]} and {parts}"
    env_names = {(p, e): (naming.kms_alias(p, e), naming.topics_kms_alias(p, e), naming.dashboard_name(p, e, 2),
                          naming.glue_database_name(p, e)) for p, e in product(PROJECTS, ENVS)}
    flat = [n for names in env_names.values() for n in names]
    assert len(flat) == len(set(flat))


def test_the_longest_names_fit_their_aws_limits():
    # GIVEN the longest spec names the schema allows, with a hyphen in the project (the longer prefix)
    project, env, entity = "a" * 7 + "-" + "b" * 8, "e" * 10, "x" * 20
    assert len(project) == 16
    for role, (name, limit) in naming.longest_names(project, env, entity).items():
        assert len(name) <= limit, (role, name)
