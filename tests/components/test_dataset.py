"""Datasets: catalogue entries per format, content-addressed uploads, least-privilege grants."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from modelops.components.dataset import Dataset, DatasetArgs
from modelops.components.model import ModelEndpoint, ModelEndpointArgs
from modelops.components.storage import Scope
from modelops.graph.render import RenderBackend, render
from modelops.graph.resource_types import BUCKET_OBJECT as OBJECT, GLUE_TABLE as TABLE, ROLE_POLICY
from modelops.spec.resolved import Dataset as DatasetSpec
from modelops.spec.resolved import Model, Retention
from modelops.graph.runtime import run
from tests.components.helpers import EXAMPLE_CASES, as_list, load, one, statements, tiny_artifact, variants_spec


def test_csv_dataset_is_catalogued_with_a_header_skip_and_its_source_uploaded(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    dataset = env.datasets["customers"]
    table = one(graph.by_type(TABLE))
    assert table.inputs["databaseName"] == "churn_dev" and table.inputs["name"] == "customers"
    storage = table.inputs["storageDescriptor"]
    assert storage["location"] == "s3://churn-dev-customers-123456789012/data/"
    assert storage["serDeInfo"]["serializationLibrary"].endswith("LazySimpleSerDe")
    assert table.inputs["parameters"]["skip.header.line.count"] == "1"
    assert [(c["name"], c["type"]) for c in storage["columns"]] == list(dataset.columns)
    upload = one(o for o in graph.by_type(OBJECT) if o.inputs["key"].startswith("data/"))
    assert upload.inputs["key"] == f"data/{dataset.source_digest.removeprefix('sha256:')}/customers.csv"
    assert upload.inputs["source"].path == dataset.source
    # the upload waits for encryption, versioning and the TLS-only policy of its bucket
    deps = {d.rsplit("::", 1)[1] for d in upload.dependencies}
    assert {"churn-dev-dataset-customers-storage-encryption", "churn-dev-dataset-customers-storage-policy"} <= deps


def test_jsonl_and_parquet_tables_use_their_serdes(tmp_path):
    env = load(variants_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    graph = render(env)
    tables = {t.inputs["name"]: t.inputs for t in graph.by_type(TABLE)}
    assert tables["events"]["storageDescriptor"]["serDeInfo"]["serializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    parquet = tables["features"]["storageDescriptor"]
    assert parquet["serDeInfo"]["serializationLibrary"].endswith("ParquetHiveSerDe")
    assert parquet["inputFormat"].endswith("MapredParquetInputFormat")
    assert [c["name"] for c in parquet["columns"]] == ["user_id", "score"]
    # no source declared: nothing uploaded under data/
    assert not [o for o in graph.by_type(OBJECT) if o.inputs["key"].startswith("data/")]
    # request metrics (billed) only for the dataset a freshness monitor watches
    (metric,) = graph.by_type("aws:s3/bucketMetric:BucketMetric")
    assert metric.inputs["bucket"] == "variants-dev-events-123456789012"


def _grants_program(encryption: str, calls: list):
    def program() -> None:
        account = aws.get_caller_identity_output().account_id
        key = aws.kms.Key("key", enable_key_rotation=True) if encryption == "kms" else None
        scope = Scope("proj", "dev", "eu-west-1", (), False, encryption, account, key.arn if key else None)
        spec = DatasetSpec(name="events", retention=Retention())
        ds = Dataset("proj-dev-dataset-events", DatasetArgs(dataset=spec, scope=scope, glue_database="proj_dev"))
        role = aws.iam.Role("app", assume_role_policy='{"Version":"2012-10-17","Statement":[]}')
        ds.grant_read(role)
        ds.grant_write(role)
        calls.append(ds)

    return program


def _policies(regs, intent):
    (policy,) = [r for r in regs if r.type == ROLE_POLICY and f"-{intent}-" in r.name]
    return policy, {s["Sid"]: s for s in statements(policy.inputs["policy"])}


@pytest.mark.parametrize("encryption", ["kms", "sse-s3"])
def test_grants_are_least_privilege_on_this_bucket_and_key(encryption):
    calls: list = []
    regs = run(_grants_program(encryption, calls), RenderBackend(), project="proj", stack="dev")
    arn = "arn:aws:s3:::proj-dev-events-123456789012"
    read, read_st = _policies(regs, "read")
    write, write_st = _policies(regs, "write")
    role = one(r for r in regs if r.type == "aws:iam/role:Role")
    assert read.inputs["role"] == write.inputs["role"] == role.outputs["name"]
    assert read_st["ReadObjects"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert read_st["ReadObjects"]["Resource"] == f"{arn}/*"
    assert read_st["ListBucket"] == {"Sid": "ListBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": arn}
    assert write_st["WriteObjects"]["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    for sts in (read_st, write_st):
        for st in sts.values():
            assert all(a != "*" and not a.endswith(":*") for a in as_list(st["Action"]))
            assert "*" not in as_list(st["Resource"])
    if encryption == "kms":
        key_arn = one(r for r in regs if r.type == "aws:kms/key:Key").outputs["arn"]
        assert read_st["UseEnvironmentKey"] == {"Sid": "UseEnvironmentKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": key_arn}
        assert write_st["UseEnvironmentKey"]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    else:
        assert "UseEnvironmentKey" not in read_st and "UseEnvironmentKey" not in write_st
    # and without request metrics there is no freshness metric to watch
    with pytest.raises(ValueError, match="request metrics are off"):
        calls[0].metric_put_requests()


def test_grant_invoke_allows_invoking_this_endpoint_only(tmp_path):
    artifact = tiny_artifact(tmp_path)

    def program() -> None:
        account = aws.get_caller_identity_output().account_id
        scope = Scope("proj", "dev", "eu-west-1", (), False, "sse-s3", account)
        model = Model(name="ranker", dataset="events", artifact=artifact)
        ep = ModelEndpoint(
            "proj-dev-model-ranker",
            ModelEndpointArgs(
                model=model,
                scope=scope,
                artifacts_bucket="proj-dev-artifacts-123456789012",
                artifacts_bucket_arn="arn:aws:s3:::proj-dev-artifacts-123456789012",
                dataset_bucket="proj-dev-events-123456789012",
                dataset_bucket_arn="arn:aws:s3:::proj-dev-events-123456789012",
                registry_bucket="proj-registry-123456789012",
                registry_key_arn="arn:aws:kms:eu-west-1:123456789012:key/registry",
            ),
        )
        app = aws.iam.Role("app", assume_role_policy=pulumi.Output.from_input('{"Version":"2012-10-17","Statement":[]}'))
        ep.grant_invoke(app)

    regs = run(program, RenderBackend(region="eu-west-1"), project="proj", stack="dev")
    grant = one(r for r in regs if r.type == ROLE_POLICY and "-invoke-" in r.name)
    (st,) = statements(grant.inputs["policy"])
    assert st["Action"] == ["sagemaker:InvokeEndpoint"]
    assert st["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/proj-dev-ranker"
    # no rollback alarms given: no rollback configuration, still a blue/green update policy
    endpoint = one(r for r in regs if r.type == "aws:sagemaker/endpoint:Endpoint")
    assert "autoRollbackConfiguration" not in endpoint.inputs["deploymentConfig"]
    assert endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["terminationWaitInSeconds"] == 600
