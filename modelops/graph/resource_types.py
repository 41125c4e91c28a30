"""What we know about each AWS resource type the components emit, in one place.

The type tokens are constants here and nowhere else; the facts per type (inputs that force
a replacement, ...) live in ``modelops/data/replacement.json``, read by diff (replace or
update), the local apply (replace or update in place) and plan.

Example::

    forcing, every = replace_keys(BUCKET)   # ({"bucket", "bucketPrefix", ...}, False)
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

BUCKET = "aws:s3/bucket:Bucket"
KMS_KEY = "aws:kms/key:Key"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCALING_TARGET = "aws:appautoscaling/target:Target"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"

#: types holding an IAM policy document, and the input that holds it
POLICY_DOCUMENT_INPUT = {
    ROLE_POLICY: "policy",
    BUCKET_POLICY: "policy",
    TOPIC_POLICY: "policy",
    ROLE: "assumeRolePolicy",
}


@lru_cache(maxsize=1)
def replacement_table() -> dict[str, Any]:
    """Which inputs of each resource type force a replacement (``modelops/data/replacement.json``)."""
    text = resources.files("modelops.data").joinpath("replacement.json").read_text(encoding="utf-8")
    return json.loads(text)["types"]


def replace_keys(type_: str) -> tuple[set[str], bool]:
    """(input names forcing replacement, every input forces it?) for a resource type."""
    entry = replacement_table().get(type_)
    if entry is None:
        return set(), False
    return set(entry.get("replace", [])), bool(entry.get("all", False))
