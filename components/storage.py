"""Secure S3 storage shared by datasets and the environment's model artifact bucket.

:class:`Scope` carries what every component of one environment needs to know about the
environment itself (names, tags, protection, the account and the KMS key);
:class:`SecureBucket` is a bucket with the settings ModelOps never lets anyone forget:
versioning, default encryption, all four public access blocks, bucket-owner-enforced
ownership, a TLS-only policy and a lifecycle from the spec's retention.

Example::

    bucket = SecureBucket("churn-dev-artifacts", SecureBucketArgs(scope=scope, role="artifacts"))
    bucket.bucket   # Output: 'churn-dev-artifacts-123456789012'
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from modelops.components import naming
from modelops.components.documents import json_document
from modelops.spec.resolved import Encryption, Retention

SECURE_BUCKET_TYPE = "modelops:index:SecureBucket"

#: storage class archived objects move to: instant retrieval keeps training jobs simple
ARCHIVE_STORAGE_CLASS = "GLACIER_IR"


@dataclass(frozen=True)
class Scope:
    """The environment every component belongs to: names, tags, protection, account, key.

    ``account_id`` comes from one ``aws.get_caller_identity_output()`` per environment;
    ``kms_key_arn`` is None when the environment uses ``encryption: sse-s3``.

    Example::

        Scope("churn", "dev", "eu-west-1", (("team", "ml"),), False, "kms", account, key_arn)
    """

    project: str
    env: str
    region: str
    tags: tuple[tuple[str, str], ...]
    protect: bool
    encryption: Encryption
    account_id: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str] | None = None

    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def bucket_name(self, role: str) -> pulumi.Output[str]:
        """The physical name of the bucket of ``role`` (a dataset, or ``artifacts``): it carries the account ID."""
        return self.account_id.apply(lambda account: naming.bucket_name(self.project, self.env, role, account))

    def stateful_options(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of stateful resources (buckets, the key): protected in protected environments.

        ``retain_on_delete`` too, so that even removing the protection and the resource from
        the spec leaves the data in AWS: losing training data or the key is never one command away.
        """
        return pulumi.ResourceOptions(parent=parent, protect=self.protect, retain_on_delete=self.protect)


@dataclass(frozen=True)
class SecureBucketArgs:
    """What a secure bucket is for.

    ``role`` is the dataset name, or ``artifacts`` for the model artifact bucket; it becomes
    part of the physical name (``naming.bucket_name``).

    Example::

        SecureBucketArgs(scope=scope, role="customers", retention=Retention(noncurrent_days=30))
    """

    scope: Scope
    role: str
    retention: Retention = Retention()


def tls_only_statement(bucket_arn: str) -> dict:
    """A Deny on every action, for the bucket and its objects, whenever a request does not use
    TLS: the one bucket policy statement AWS recommends for every bucket."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _tls_only_policy(bucket_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [tls_only_statement(bucket_arn)]}, sort_keys=True)


def lifecycle_rules(retention: Retention) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The lifecycle rule a retention becomes (one rule over the whole bucket)."""
    rule: dict = {
        "id": "modelops-retention",
        "status": "Enabled",
        "filter": aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        "noncurrent_version_expiration": aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=retention.noncurrent_days
        ),
        "abort_incomplete_multipart_upload": aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=retention.abort_multipart_days
        ),
    }
    if retention.archive_after_days is not None:
        rule["transitions"] = [
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                days=retention.archive_after_days, storage_class=ARCHIVE_STORAGE_CLASS
            )
        ]
    if retention.expire_after_days is not None:
        rule["expiration"] = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=retention.expire_after_days)
    return [aws.s3.BucketLifecycleConfigurationRuleArgs(**rule)]


def private_access(name: str, bucket_id: pulumi.Input[str], opts: pulumi.ResourceOptions
                   ) -> tuple[aws.s3.BucketPublicAccessBlock, aws.s3.BucketOwnershipControls]:
    """All four public access blocks and bucket-owner-enforced ownership (no ACLs) of a
    bucket: what every bucket ModelOps makes has, the artifact registry's too."""
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket_id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket_id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
    return block, ownership


class SecureBucket(pulumi.ComponentResource):
    """A versioned, encrypted, private, TLS-only S3 bucket with a retention lifecycle.

    Example::

        SecureBucket("churn-dev-customers", SecureBucketArgs(scope=scope, role="customers"))

    Outputs::

        bucket  Output[str]  The bucket's physical name.
        arn     Output[str]  The bucket's ARN.

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(SECURE_BUCKET_TYPE, name, None, opts)
        scope = args.scope
        self.scope = scope
        child = pulumi.ResourceOptions(parent=self)
        physical = scope.bucket_name(args.role)
        self.resource = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=physical,
            force_destroy=False,
            tags=scope.tag_dict(),
            opts=scope.stateful_options(self),
        )
        bucket_id = self.resource.bucket
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        if scope.encryption == "kms" and scope.kms_key_arn is not None:
            default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=scope.kms_key_arn
            )
            # A bucket key cuts KMS requests (and their cost) by orders of magnitude.
            rule = aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=default, bucket_key_enabled=True
            )
        else:
            default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
            rule = aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(apply_server_side_encryption_by_default=default)
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket_id, rules=[rule], opts=child
        )
        self.public_access_block, self.ownership = private_access(name, bucket_id, child)
        # The public access block first: S3 rejects policies while a block is being changed.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=self.resource.arn.apply(_tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        # S3 requires versioning to be configured before lifecycle rules on noncurrent versions.
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=lifecycle_rules(args.retention),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        self.bucket = self.resource.bucket
        self.arn = self.resource.arn
        #: uploads wait for these, so that no object is ever written unencrypted or over plain HTTP
        self.ready: list[pulumi.Resource] = [self.encryption, self.versioning, self.policy, self.ownership]
        self.register_outputs({"bucket": self.bucket, "arn": self.arn})


def kms_statements(scope: Scope, actions: list[str], sid: str = "UseEnvironmentKey") -> list[dict]:
    """IAM statements letting a principal use the environment key; none under sse-s3."""
    if scope.encryption != "kms" or scope.kms_key_arn is None:
        return []
    return [{"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": scope.kms_key_arn}]


def policy_document(statements: list[dict]) -> pulumi.Input[str]:
    """An IAM policy document (JSON) from statements whose values may be Outputs."""
    return json_document({"Version": "2012-10-17", "Statement": statements})
