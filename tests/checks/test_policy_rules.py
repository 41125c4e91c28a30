"""Built-in policies on hand-made graphs: each rule fails on the bad shape and passes the good one."""

from __future__ import annotations

import json

import pytest

from modelops.checks.policy import evaluate, levels, wildcard_problems
from modelops.spec.resolved import Autoscaling, Channel, Environment, Model, Monitor, Serverless, Serving
from modelops.graph.runtime import Registration

TLS_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def reg(type_: str, name: str, inputs: dict, deps: tuple[str, ...] = (), parent: str = "") -> Registration:
    return Registration(urn=f"urn:pulumi:dev::p::{type_}::{name}", type=type_, name=name, custom=not type_.startswith("modelops:"),
                        inputs=inputs, dependencies=list(deps), parent=parent)


def storage(name: str = "customers", *, sse: bool = True, pab: dict | None = None, policy: str = TLS_ONLY) -> list[Registration]:
    comp = reg("modelops:index:Dataset", name, {})
    bucket = reg("aws:s3/bucket:Bucket", f"{name}-bucket", {"bucket": f"p-dev-{name}-000000000000"}, parent=comp.urn)
    out = [comp, bucket]
    if sse:
        out.append(reg("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                       f"{name}-sse", {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
                       (bucket.urn,), comp.urn))
    pab = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
           "restrictPublicBuckets": True} if pab is None else pab
    out.append(reg("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-pab", pab, (bucket.urn,), comp.urn))
    out.append(reg("aws:s3/bucketPolicy:BucketPolicy", f"{name}-policy", {"policy": policy}, (bucket.urn,), comp.urn))
    return out


def env(name: str = "dev", **kw) -> Environment:
    return Environment(project="p", env=name, owner="o@example.com", region="us-east-1", **kw)


def ids(findings) -> set[tuple[str, str]]:
    return {(f.policy, f.level) for f in findings}


def test_good_storage_has_no_findings():
    assert evaluate(env(datasets={}), storage()) == []


def test_missing_encryption_is_mandatory_and_names_the_entity():
    [finding] = evaluate(env(), storage(sse=False))
    assert (finding.policy, finding.level, finding.entity) == ("storage-encrypted", "mandatory", "datasets.customers")
    assert "customers" in finding.line("modelops.yaml") and finding.line().count(";") == 1


def test_public_access_block_needs_all_four():
    findings = evaluate(env(), storage(pab={"blockPublicAcls": True, "blockPublicPolicy": True,
                                            "ignorePublicAcls": True, "restrictPublicBuckets": False}))
    assert ids(findings) == {("storage-private", "mandatory")}
    assert "restrictPublicBuckets" in findings[0].message


def test_policy_without_tls_deny_is_flagged():
    findings = evaluate(env(), storage(policy=json.dumps({"Statement": []})))
    assert [f.message for f in findings] == ["the bucket policy does not deny requests without TLS"]


@pytest.mark.parametrize("statement,bad", [
    ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}, True),
    ({"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b"}, True),
    ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}, True),
    ({"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}, False),
    ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}, False),
    ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
])
def test_wildcard_iam(statement, bad):
    policy = json.dumps({"Statement": [statement]})
    assert bool(wildcard_problems(policy)) is bad
    graph = [reg("aws:iam/rolePolicy:RolePolicy", "m-exec-policy", {"policy": policy})]
    assert bool(evaluate(env(), graph)) is bad


def test_endpoint_config_without_kms_key():
    variant = {"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 1}
    bad = reg("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "cfg", {"productionVariants": [variant]})
    good = reg("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "cfg2",
               {"productionVariants": [variant], "kmsKeyArn": "arn:aws:kms:us-east-1:000000000000:key/x"})
    serverless = reg("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "cfg3",
                     {"productionVariants": [{"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 2048}}]})
    assert ids(evaluate(env(), [bad])) == {("endpoint-encrypted", "mandatory")}
    assert evaluate(env(), [good, serverless]) == []


def model(name: str, **serving) -> Model:
    return Model(name=name, dataset="d", serving=Serving(**serving))


def monitors_for(name: str, notify=("oncall",)) -> dict[str, Monitor]:
    return {f"{name}-lat": Monitor(name=f"{name}-lat", metric="latency_p99", model=name, notify=notify),
            f"{name}-err": Monitor(name=f"{name}-err", metric="error_rate", model=name, notify=notify)}


def test_prod_rules_only_in_production_and_advisory_by_default():
    models = {"m": model("m", instance_count=1)}
    assert evaluate(env("dev", models=models), []) == []
    findings = evaluate(env("prod", models=models), [])
    assert ids(findings) == {("prod-min-instances", "advisory"), ("prod-monitors", "advisory")}
    # protect: true makes any environment production
    assert ids(evaluate(env("live", protect=True, models=models), [])) == ids(findings)


def test_prod_min_instances_counts_autoscaling_min_and_passes_serverless():
    models = {
        "a": model("a", instance_count=2),
        "b": model("b", instance_count=1, autoscaling=Autoscaling(min=2, max=4)),
        "c": model("c", serverless=Serverless()),
        "d": model("d", instance_count=3, autoscaling=Autoscaling(min=1, max=4)),
    }
    mons = {k: v for n in models for k, v in monitors_for(n).items()}
    channels = {"oncall": Channel(name="oncall", email=("x@example.com",))}
    findings = evaluate(env("prod", models=models, monitors=mons, channels=channels), [])
    assert [(f.policy, f.entity) for f in findings] == [("prod-min-instances", "models.d")]


def test_prod_monitor_without_notification():
    models = {"m": model("m", instance_count=2)}
    findings = evaluate(env("prod", models=models, monitors=monitors_for("m", notify=())), [])
    assert {f.message for f in findings} == {
        "the latency monitor of the production model notifies nobody",
        "the error monitor of the production model notifies nobody",
    }


def test_spec_policies_override_levels():
    models = {"m": model("m", instance_count=1)}
    e = env("prod", models=models, policies={"prod-min-instances": "mandatory", "prod-monitors": "off",
                                             "storage-encrypted": "advisory"})
    assert levels(e)["storage-encrypted"] == "advisory"
    assert ids(evaluate(e, storage(sse=False))) == {("prod-min-instances", "mandatory"), ("storage-encrypted", "advisory")}


@pytest.mark.parametrize("principal,condition,public", [
    ("*", None, True),
    ({"AWS": "*"}, None, True),
    ({"AWS": ["arn:aws:iam::111111111111:root", "*"]}, None, True),
    # a condition that says nothing about the caller leaves the bucket public
    ("*", {"Bool": {"aws:SecureTransport": "true"}}, True),
    ("*", {"StringNotEquals": {"aws:PrincipalAccount": "111111111111"}}, True),
    ("*", {"StringEqualsIfExists": {"aws:PrincipalAccount": "111111111111"}}, True),
    ("*", {"StringLike": {"aws:PrincipalOrgID": "o-*"}}, True),
    # limited to known callers
    ("*", {"StringEquals": {"aws:PrincipalAccount": ["111111111111", "222222222222"]}}, False),
    ("*", {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, False),
    ({"AWS": "arn:aws:iam::111111111111:root"}, None, False),
])
def test_a_grant_to_everyone_is_private_only_when_a_condition_limits_the_callers(principal, condition, public):
    grant = {"Sid": "Read", "Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/*"}
    if condition is not None:
        grant["Condition"] = condition
    document = json.loads(TLS_ONLY)
    document["Statement"].append(grant)
    findings = evaluate(env(), storage(policy=json.dumps(document)))
    assert ids(findings) == ({("storage-private", "mandatory")} if public else set())
    if public:
        assert findings[0].message == "statement Read allows everyone"
