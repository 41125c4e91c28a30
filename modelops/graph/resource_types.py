"""What we know about each AWS resource type the components emit, in one place.

The type tokens are constants here and nowhere else; the facts per type live in
``modelops/data/resource_types.json``, read through this module only:

* ``replace`` / ``all``: the inputs whose change forces a replacement, read by diff
  (replace or update) and the local apply (replace or update in place);
* ``outputs``: what the render computes for the type (:mod:`modelops.graph.render`);
* ``plan``: the properties ``modelops plan`` shows;
* ``cost``: ``free``, ``usage:<prices.json section>`` or ``priced``
  (:mod:`modelops.review.cost`).

Example::

    forcing, every = replace_keys(BUCKET)   # (frozenset({"bucket", "bucketPrefix", ...}), False)
    type_facts(BUCKET).cost                 # "usage:s3"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
BUCKET_METRIC = "aws:s3/bucketMetric:BucketMetric"
GLUE_DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
GLUE_TABLE = "aws:glue/catalogTable:CatalogTable"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
MODEL_PACKAGE_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE = "aws:scheduler/schedule:Schedule"

#: the data sources (invoke tokens) the program calls, answered by the render and the
#: local backend alike: the account, and the registry lookups (components/model.py,
#: components/environment.py)
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
GET_OBJECTS = "aws:s3/getObjects:getObjects"
GET_ALIAS = "aws:kms/getAlias:getAlias"
GET_KEY = "aws:kms/getKey:getKey"

#: types holding an IAM policy document, and the input that holds it
POLICY_DOCUMENT_INPUT = {
    ROLE_POLICY: "policy",
    BUCKET_POLICY: "policy",
    TOPIC_POLICY: "policy",
    ROLE: "assumeRolePolicy",
}

#: the fields every entry of the table has
FIELDS = ("replace", "all", "outputs", "plan", "cost")


@dataclass(frozen=True)
class TypeFacts:
    """One entry of ``modelops/data/resource_types.json``."""

    token: str
    #: inputs whose change forces a replacement
    replace: frozenset[str]
    #: every input but tags forces one (SageMaker models, endpoint configurations)
    replace_all: bool
    #: outputs the render computes
    outputs: tuple[str, ...]
    #: dotted input paths ``plan`` shows
    plan: tuple[str, ...]
    #: ``free``, ``usage:<prices.json section>`` or ``priced``
    cost: str

    @property
    def usage(self) -> str | None:
        """The prices.json section a usage-based type's cost depends on, else None."""
        return self.cost.split(":", 1)[1] if self.cost.startswith("usage:") else None


@lru_cache(maxsize=1)
def table() -> dict[str, TypeFacts]:
    """Every type token the components emit -> its facts, read once."""
    text = resources.files("modelops.data").joinpath("resource_types.json").read_text(encoding="utf-8")
    entries = json.loads(text)["types"]
    for token, entry in entries.items():
        missing = [f for f in FIELDS if f not in entry]
        if missing:  # a packaging bug, never the user's: say which entry to complete
            raise ValueError(f"modelops/data/resource_types.json: {token} lacks {', '.join(missing)}")
    return {
        token: TypeFacts(token, frozenset(entry["replace"]), bool(entry["all"]), tuple(entry["outputs"]),
                         tuple(entry["plan"]), str(entry["cost"]))
        for token, entry in entries.items()
    }


def type_facts(type_: str) -> TypeFacts | None:
    """The facts of one type token, or None for a type the components never emit."""
    return table().get(type_)


def replace_keys(type_: str) -> tuple[frozenset[str], bool]:
    """(input names forcing replacement, every input forces it?) for a resource type."""
    facts = table().get(type_)
    if facts is None:
        return frozenset(), False
    return facts.replace, facts.replace_all


def plan_properties(type_: str) -> tuple[str, ...]:
    """The dotted input paths ``plan`` shows for a resource type (none for an unknown one)."""
    facts = table().get(type_)
    return facts.plan if facts is not None else ()
