"""Pure pieces of the diff: permission widening, --fail-on parsing, the replacement table."""

from __future__ import annotations

import json

import pytest

from modelops.graph.resource_types import replace_keys, replacement_table
from modelops.review.compare import field_changes
from modelops.review.report import parse_fail_on
from modelops.review.risks import widened
from modelops.errors import UsageError


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


READ = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::orders/*"}


@pytest.mark.parametrize("new,grows", [
    (doc(READ), False),
    (doc({**READ, "Action": ["s3:GetObject", "s3:PutObject"]}), True),
    (doc({**READ, "Resource": "arn:aws:s3:::events/*"}), True),
    (doc({**READ, "Resource": "arn:aws:s3:::orders/data/*"}), False),   # narrower: covered by orders/*
    (doc(READ, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}), False),
])
def test_widened_counts_only_new_allowed_pairs(new, grows):
    assert bool(widened(doc(READ), new)) is grows


def test_fail_on_parsing():
    assert parse_fail_on("data-loss, replace,policy,cost>100") == ["data-loss", "replace", "policy", "cost>100"]
    assert parse_fail_on("") == []
    with pytest.raises(UsageError, match=r"--fail-on cost>lots: expected cost>N"):
        parse_fail_on("cost>lots")
    with pytest.raises(UsageError, match=r"--fail-on dataloss: unknown condition"):
        parse_fail_on("dataloss")


def test_replacement_table_covers_every_emitted_type():
    emitted = """aws:kms/key:Key aws:kms/alias:Alias aws:s3/bucket:Bucket aws:s3/bucketVersioning:BucketVersioning
    aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration
    aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock aws:s3/bucketOwnershipControls:BucketOwnershipControls
    aws:s3/bucketPolicy:BucketPolicy aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration
    aws:s3/bucketObjectv2:BucketObjectv2 aws:s3/bucketMetric:BucketMetric aws:glue/catalogDatabase:CatalogDatabase
    aws:glue/catalogTable:CatalogTable aws:iam/role:Role aws:iam/rolePolicy:RolePolicy aws:sagemaker/model:Model
    aws:sagemaker/endpointConfiguration:EndpointConfiguration aws:sagemaker/endpoint:Endpoint
    aws:sagemaker/modelPackageGroup:ModelPackageGroup aws:appautoscaling/target:Target
    aws:appautoscaling/policy:Policy aws:sns/topic:Topic aws:sns/topicPolicy:TopicPolicy
    aws:sns/topicSubscription:TopicSubscription aws:cloudwatch/metricAlarm:MetricAlarm
    aws:cloudwatch/dashboard:Dashboard""".split()
    assert sorted(emitted) == sorted(replacement_table())
    assert replace_keys("aws:sagemaker/endpoint:Endpoint") == ({"name"}, False)
    assert replace_keys("aws:sagemaker/endpointConfiguration:EndpointConfiguration")[1] is True
    assert "bucket" in replace_keys("aws:s3/bucket:Bucket")[0]


def test_field_changes_are_leaf_paths():
    old = {"serving": {"instance_type": "ml.m5.large", "instance_count": 1}, "gates": [["accuracy", ">=", 0.8]]}
    new = {"serving": {"instance_type": "ml.m5.large", "instance_count": 2}, "gates": [["accuracy", ">=", 0.9]]}
    assert [c.text() for c in field_changes(old, new)] == [
        'gates: [["accuracy", ">=", 0.8]] → [["accuracy", ">=", 0.9]]', "serving.instance_count: 1 → 2"]
