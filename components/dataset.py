"""A dataset: secure S3 storage, its catalogue entry (Glue), its optional source upload, grants.

Example::

    ds = Dataset("churn-dev-dataset-customers", DatasetArgs(dataset=env.datasets["customers"],
                 scope=scope, glue_database=db.name))
    ds.grant_read(role)              # an aws.iam.RolePolicy: read this dataset, nothing else
    ds.metric_put_requests()         # MetricRef of writes under data/ (freshness monitors)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from modelops.components import metrics, naming
from modelops.components.storage import Scope, SecureBucket, SecureBucketArgs, kms_statements, policy_document
from modelops.spec.resolved import Dataset as DatasetSpec

DATASET_TYPE = "modelops:index:Dataset"

#: where uploaded data lives in a dataset bucket (the catalogue table reads from here)
DATA_PREFIX = "data/"

#: (serialization library, SerDe parameters, input format, output format, table parameters)
_TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
FORMATS: dict[str, tuple[str, dict[str, str], str, str, dict[str, str]]] = {
    "csv": (
        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        {"field.delim": ",", "serialization.format": ","},
        _TEXT_INPUT,
        _TEXT_OUTPUT,
        {"classification": "csv", "skip.header.line.count": "1"},
    ),
    "jsonl": (
        "org.openx.data.jsonserde.JsonSerDe",
        {"ignore.malformed.json": "FALSE"},
        _TEXT_INPUT,
        _TEXT_OUTPUT,
        {"classification": "json"},
    ),
    "parquet": (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        {"serialization.format": "1"},
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        {"classification": "parquet"},
    ),
}

READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]
LIST_ACTIONS = ["s3:ListBucket"]
KMS_READ_ACTIONS = ["kms:Decrypt"]
# Decrypt too: multipart uploads under SSE-KMS read back the data key.
KMS_WRITE_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]


@dataclass(frozen=True)
class DatasetArgs:
    """A resolved dataset and the environment around it.

    ``glue_database`` is the environment's Glue database name; ``freshness_monitored`` makes
    the component create the S3 request-metrics filter that freshness alarms read (request
    metrics are billed, so only when a monitor needs them).

    Example::

        DatasetArgs(dataset=env.datasets["customers"], scope=scope, glue_database="churn_dev",
                    freshness_monitored=True)
    """

    dataset: DatasetSpec
    scope: Scope
    glue_database: pulumi.Input[str]
    freshness_monitored: bool = False
    #: (model, role, key) of the empty objects the monitor jobs of the models reading this
    #: dataset need in its bucket (``monitor_job.marker_keys``)
    markers: tuple[tuple[str, str, str], ...] = ()


class Dataset(pulumi.ComponentResource):
    """Storage, catalogue entry and optional upload of one spec dataset.

    Example::

        Dataset("churn-dev-dataset-customers", DatasetArgs(dataset=spec, scope=scope, glue_database="churn_dev"))

    Outputs::

        bucket      Output[str]  The dataset bucket's physical name.
        bucket_arn  Output[str]  The dataset bucket's ARN.
        table_name  Output[str]  The Glue catalogue table of the dataset.
        source_key  Output[str | None]  Object key of the uploaded source file, or None when the dataset declares no source.

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: DatasetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DATASET_TYPE, name, None, opts)
        spec = args.dataset
        scope = args.scope
        self.spec = spec
        self.scope = scope
        self.storage = SecureBucket(
            f"{name}-storage",
            SecureBucketArgs(scope=scope, role=spec.name, retention=spec.retention),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bucket = self.storage.bucket
        self.bucket_arn = self.storage.arn

        serde, serde_params, input_format, output_format, table_params = FORMATS[spec.format]
        self.table = aws.glue.CatalogTable(
            f"{name}-table",
            database_name=args.glue_database,
            name=naming.glue_table_name(spec.name),
            description=spec.description or f"ModelOps dataset {spec.name}",
            table_type="EXTERNAL_TABLE",
            parameters=table_params,
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=self.bucket.apply(lambda b: f"s3://{b}/{DATA_PREFIX}"),
                input_format=input_format,
                output_format=output_format,
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=serde, parameters=serde_params
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(name=col, type=typ) for col, typ in spec.columns
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.table_name = self.table.name

        self.upload: aws.s3.BucketObjectv2 | None = None
        if spec.source is not None:
            if spec.source_digest is None:
                raise ValueError(f"dataset {spec.name!r}: source {spec.source!r} has no digest (resolve the spec first)")
            key = naming.source_key(spec.name, spec.source_digest, os.path.basename(spec.source))
            self.upload = aws.s3.BucketObjectv2(
                f"{name}-source",
                bucket=self.bucket,
                key=key,
                source=pulumi.FileAsset(spec.source),
                tags=scope.tag_dict(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=self.storage.ready),
            )
            self.source_key = pulumi.Output.from_input(key)
        else:
            self.source_key = pulumi.Output.from_input(None)

        # made here, not by the jobs: a model's stack may not be its dataset's (docs/stacks.md)
        self.markers = [
            aws.s3.BucketObjectv2(f"{name}-{model}-{role}-marker", bucket=self.bucket, key=key, content="",
                                  content_type="text/plain", tags=scope.tag_dict(),
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=self.storage.ready))
            for model, role, key in args.markers
        ]

        self.request_metrics: aws.s3.BucketMetric | None = None
        if args.freshness_monitored:
            self.request_metrics = aws.s3.BucketMetric(
                f"{name}-request-metrics",
                bucket=self.bucket,
                name=metrics.S3_DATA_WRITES_FILTER,
                # Only writes of data count as fresh data: capture logs land in the same bucket.
                filter=aws.s3.BucketMetricFilterArgs(prefix=DATA_PREFIX),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.register_outputs(
            {
                "bucket": self.bucket,
                "bucket_arn": self.bucket_arn,
                "table_name": self.table_name,
                "source_key": self.source_key,
            }
        )

    # -- grants ----------------------------------------------------------------------------

    def _grant(self, role: aws.iam.Role, intent: str, s3_actions: list[str], kms_actions: list[str]) -> aws.iam.RolePolicy:
        statements: list[dict] = [
            {
                "Sid": f"{intent.capitalize()}Objects",
                "Effect": "Allow",
                "Action": s3_actions,
                "Resource": self.bucket_arn.apply(lambda arn: f"{arn}/*"),
            },
            {"Sid": "ListBucket", "Effect": "Allow", "Action": LIST_ACTIONS, "Resource": self.bucket_arn},
            *kms_statements(self.scope, kms_actions),
        ]
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-{intent}-{role.pulumi_resource_name}",
            role=role.name,
            name=f"modelops-{intent}-{self.spec.name}",
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def grant_read(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` read (get, list) this dataset's objects, and decrypt them.

        Example::

            customers.grant_read(training_role)
        """
        return self._grant(role, "read", READ_ACTIONS, KMS_READ_ACTIONS)

    def grant_write(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` write (put, abort multipart, list) this dataset's objects, encrypted.

        Example::

            customers.grant_write(ingest_role)
        """
        return self._grant(role, "write", WRITE_ACTIONS, KMS_WRITE_ACTIONS)

    # -- metrics ---------------------------------------------------------------------------

    def metric_put_requests(self) -> metrics.MetricRef:
        """PUT requests under ``data/`` (statistic Sum, period 1 day): freshness monitors watch it.

        Needs the request-metrics filter (``DatasetArgs.freshness_monitored``). The bucket
        dimension is an Output (the name carries the account ID).

        Example::

            customers.metric_put_requests().name   # 'PutRequests'
        """
        if self.request_metrics is None:
            raise ValueError(f"dataset {self.spec.name!r}: request metrics are off; set freshness_monitored=True")
        return metrics.s3_put_requests(self.bucket)
