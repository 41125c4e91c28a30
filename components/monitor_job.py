"""The monitor job of one model: its SageMaker Pipeline, schedule and least-privilege roles.

Per model with job monitors (``data_drift``, ``data_quality``, ``prediction_drift``,
``model_quality``) of one schedule:

* the job script (``modelops/ml/monitor_job.py``) and its config, content-addressed
  (sha256 in the key) in the artifacts bucket; the baseline is read from the model package
  already there (``baseline.json`` in ``model.tar.gz``, written by ``modelops build``);
* a SageMaker Pipeline (definition format ``2020-12-01``) of two processing steps on AWS's
  scikit-learn image, pinned (``serving_images.PROCESSING_FRAMEWORK``) whatever the model
  serves with: ``stats`` over ``instance_count`` instances, each listing the capture of
  the run's window through S3 and reading its share (key *j* to instance *j* mod N, as
  ``ShardedByS3Key`` would: the capture is no input), and ``merge`` on one, which adds their
  statistics (processing instances cannot exchange data: merging is a step of its own),
  writes the results and puts the CloudWatch data;
* an EventBridge Scheduler schedule (``rate(1 hour)`` / ``rate(1 day)``) whose role may
  only start that pipeline; the pipeline's role may only run its processing jobs and pass
  the job role; the job role reads capture, labels, package, script and config, writes
  ``monitoring/`` of the dataset bucket, and puts metric data in the job namespaces only.

Example::

    MonitorJob("churn-dev-job-churn-classifier", MonitorJobArgs(model=m, monitors=(drift,), scope=scope, ...))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from modelops.components import metrics, naming, serving_images
from modelops.components.documents import json_document
from modelops.components.model import partition
from modelops.components.storage import Scope, kms_statements, policy_document
from modelops.spec.resolved import SCHEDULE_SECONDS
from modelops.spec.resolved import Model as ModelSpec
from modelops.spec.resolved import Monitor as MonitorSpec

MONITOR_JOB_TYPE = "modelops:index:MonitorJob"
PIPELINE_FORMAT = "2020-12-01"
CONFIG_SCHEMA = "modelops/monitor-job/v1"
#: where SageMaker processing mounts inputs and collects outputs in the container
PROCESSING = "/opt/ml/processing"
#: where SageMaker tells each processing instance its host name and the job's hosts
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
SCRIPT_NAME = "monitor_job.py"
#: the processing instance type (ml.t3.medium is the smallest processing allows)
INSTANCE_TYPE = "ml.t3.medium"
#: stats instances: shards of the capture (more instances, not a bigger one)
STATS_INSTANCES = 1
VOLUME_GB = 30
MAX_RUNTIME_SECONDS = 3600
SCHEDULES = {"hourly": "rate(1 hour)", "daily": "rate(1 day)"}
#: an empty object keeping a processing input's prefix non-empty: SageMaker refuses an
#: input prefix without objects, and "no traffic" must be a run with no data, not a failure
EMPTY_MARKER = "_modelops-empty"
#: the job's namespaces, the one condition on its cloudwatch:PutMetricData
JOB_NAMESPACES = tuple(sorted({metrics.DRIFT_NAMESPACE, metrics.MONITORING_NAMESPACE}))


def job_source() -> str:
    """The job script's text (it ships as code, like the inference script in a package)."""
    return (Path(__file__).resolve().parent.parent / "modelops" / "ml" / SCRIPT_NAME).read_text(encoding="utf-8")


def marker_keys(project: str, env: str, model: ModelSpec, monitors: tuple[MonitorSpec, ...]) -> dict[str, str]:
    """The objects keeping the prefixes the job mounts non-empty (see EMPTY_MARKER), by role:
    keys in the model's dataset bucket. Only the labels: the capture is not mounted (the
    stats step lists its window's hours itself).

    The dataset's component makes them, beside the bucket: a model may be deployed by
    another stack than its dataset (docs/stacks.md), and an object in a bucket that stack
    has not made yet cannot be written.
    """
    config = job_config(project, env, model, monitors)
    return {"labels": f"{config['labels_prefix']}{EMPTY_MARKER}"}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def job_config(project: str, env: str, model: ModelSpec, monitors: tuple[MonitorSpec, ...]) -> dict:
    """What the job computes and where it publishes (no account-dependent value: content-addressed)."""
    endpoint = naming.endpoint_name(project, env, model.name)
    labels = sorted({m.labels for m in monitors if m.labels}) or [f"labels/{model.name}/"]
    refs = metrics.job_metric_refs(endpoint)
    schedule = monitors[0].schedule or "hourly"
    return {
        "schema": CONFIG_SCHEMA,
        "project": project,
        "env": env,
        "model": model.name,
        "endpoint": endpoint,
        "window_seconds": SCHEDULE_SECONDS[schedule],
        "capture_prefix": f"{naming.capture_prefix(model.name)}/{endpoint}/",
        "labels_prefix": labels[0],
        "monitors": [
            {"name": m.name, "metric": m.metric, "comparison": m.comparison, "threshold": m.threshold.value,
             "test": m.test, "quality_metric": m.quality, "labels": m.labels, "no_data": m.no_data}
            for m in sorted(monitors, key=lambda m: m.name)
        ],
        "metrics": refs,
    }


@dataclass(frozen=True)
class MonitorJobArgs:
    """A model, its job monitors of one schedule, and where its data lives.

    Example::

        MonitorJobArgs(model=m, monitors=(drift,), scope=scope, artifacts_bucket=..., artifacts_bucket_arn=...,
                       dataset_bucket=..., dataset_bucket_arn=..., artifact_key="models/churn/<hex>/model.tar.gz")
    """

    model: ModelSpec
    monitors: tuple[MonitorSpec, ...]
    scope: Scope
    artifacts_bucket: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    dataset_bucket: pulumi.Input[str]
    dataset_bucket_arn: pulumi.Input[str]
    #: the model package's key in the artifacts bucket (``naming.artifact_key``)
    artifact_key: str
    #: the job script's text; None: this checkout's (:func:`job_source`)
    script: str | None = None
    instance_count: int = STATS_INSTANCES
    #: what the pipeline waits for (the package upload), so a run never misses its input
    depends_on: tuple[pulumi.Resource, ...] = ()


def _input(name: str, uri: pulumi.Input[str], local: str) -> dict:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def pipeline_definition(*, image: str, role_arn, instance_count: int, region: str, kms_key_arn,
                        script_key: str, config_key: str, artifacts_bucket, package_uri, labels_uri,
                        stats_uri, bucket) -> dict:
    """The pipeline definition (format 2020-12-01): ``stats`` on N instances, then ``merge``.

    An input whose URI is one object's key is mounted under its own file name: the script
    and config keep their content-addressed names in the container.
    """
    code = f"{PROCESSING}/input/code"
    config = f"{PROCESSING}/input/config/{config_key.rsplit('/', 1)[-1]}"
    script = f"{code}/{script_key.rsplit('/', 1)[-1]}"
    script_uri = pulumi.Output.concat("s3://", artifacts_bucket, "/", script_key)
    config_uri = pulumi.Output.concat("s3://", artifacts_bucket, "/", config_key)
    package = f"{PROCESSING}/input/package"
    execution = {"Get": "Execution.PipelineExecutionId"}
    stats_out = {"Std:Join": {"On": "/", "Values": [stats_uri, execution]}}
    common_inputs = [
        _input("code", script_uri, code),
        _input("config", config_uri, f"{PROCESSING}/input/config"),
        _input("package", package_uri, package),
    ]

    def step(name: str, count: int, arguments: list, inputs: list, outputs: list) -> dict:
        args: dict = {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": INSTANCE_TYPE, "InstanceCount": count,
                                                      "VolumeSizeInGB": VOLUME_GB}},
            "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": ["python3", script],
                                 "ContainerArguments": arguments},
            "RoleArn": role_arn,
            "ProcessingInputs": inputs,
            "Environment": {"AWS_REGION": region, "AWS_DEFAULT_REGION": region},
            "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
            # stats lists and reads the window's capture in S3; merge calls S3 and CloudWatch
            "NetworkConfig": {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True},
        }
        if outputs:
            args["ProcessingOutputConfig"] = {"Outputs": outputs}
            if kms_key_arn is not None:
                args["ProcessingOutputConfig"]["KmsKeyId"] = kms_key_arn
        return {"Name": name, "Type": "Processing", "Arguments": args}

    # The capture is not a ProcessingInput: an input mounts a whole prefix, and the window's
    # hour prefixes (capture/.../<variant>/yyyy/mm/dd/hh/) depend on the run's time, which
    # the definition cannot format (its expressions join strings, no date functions) nor
    # the schedule pass (its pipeline parameters are fixed). The script lists the window's
    # hours itself and fetches its share (RESOURCE_CONFIG gives its index), so the stats
    # step needs the network the merge step already has.
    stats = step(
        "stats", instance_count,
        ["stats", "--config", config, "--package", package, "--bucket", bucket, "--capture", f"{PROCESSING}/capture",
         "--resource-config", RESOURCE_CONFIG, "--labels", f"{PROCESSING}/input/labels",
         "--out", f"{PROCESSING}/output/stats"],
        common_inputs + [_input("labels", labels_uri, f"{PROCESSING}/input/labels")],
        [{"OutputName": "stats", "AppManaged": False,
          "S3Output": {"S3Uri": stats_out, "LocalPath": f"{PROCESSING}/output/stats", "S3UploadMode": "EndOfJob"}}],
    )
    merge = step(
        "merge", 1,
        ["merge", "--config", config, "--package", package, "--stats", f"{PROCESSING}/input/stats", "--bucket", bucket,
         "--package-uri", package_uri],
        common_inputs + [_input("stats", {"Get": "Steps.stats.ProcessingOutputConfig.Outputs['stats'].S3Output.S3Uri"},
                                f"{PROCESSING}/input/stats")],
        [],
    )
    merge["DependsOn"] = ["stats"]
    return {"Version": PIPELINE_FORMAT, "Metadata": {}, "Parameters": [], "Steps": [stats, merge]}


class MonitorJob(pulumi.ComponentResource):
    """The scheduled monitor job of one model (see the module docstring).

    Example::

        MonitorJob("churn-dev-job-churn-classifier", args)

    Outputs::

        pipeline_name  Output[str]  The SageMaker pipeline's name.
        schedule_name  Output[str]  The EventBridge Scheduler schedule's name.
        job_role_arn   Output[str]  The role the processing jobs run as.

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: MonitorJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MONITOR_JOB_TYPE, name, None, opts)
        scope, model = args.scope, args.model
        child = pulumi.ResourceOptions(parent=self)
        tags = scope.tag_dict()
        part = partition(scope.region)
        schedule = args.monitors[0].schedule or "hourly"
        endpoint = naming.endpoint_name(scope.project, scope.env, model.name)
        pipeline_name = naming.pipeline_name(scope.project, scope.env, model.name)
        job_prefix = naming.job_prefix(model.name)
        capture_prefix = f"{naming.capture_prefix(model.name)}/{endpoint}/"
        config = job_config(scope.project, scope.env, model, args.monitors)
        labels_prefix = config["labels_prefix"]
        results_prefix = naming.RESULTS_PREFIX
        stats_prefix = f"{results_prefix}{naming.JOB_STATS_DIR}/{model.name}/"

        # -- the script and its config, content-addressed ------------------------------------
        script = args.script if args.script is not None else job_source()
        config_text = json.dumps(config, sort_keys=True, indent=1)
        script_key = f"{job_prefix}{SCRIPT_NAME[:-3]}-sha256-{_sha(script)}.py"
        config_key = f"{job_prefix}config-sha256-{_sha(config_text)}.json"
        self.script = aws.s3.BucketObjectv2(f"{name}-script", bucket=args.artifacts_bucket, key=script_key,
                                            content=script, content_type="text/x-python", tags=tags, opts=child)
        self.config = aws.s3.BucketObjectv2(f"{name}-config", bucket=args.artifacts_bucket, key=config_key,
                                            content=config_text, content_type="application/json", tags=tags, opts=child)
        # the prefixes it mounts hold an object made by the dataset's component (marker_keys)

        # -- the job role ---------------------------------------------------------------------
        def arn_of(bucket_arn, prefix: str):
            return pulumi.Output.concat(bucket_arn, "/", prefix, "*")

        processing_logs = scope.account_id.apply(
            lambda acct: f"arn:{part}:logs:{scope.region}:{acct}:log-group:/aws/sagemaker/ProcessingJobs")
        registry_account = serving_images.REGISTRY_ACCOUNT[scope.region]
        repo_arn = f"arn:{part}:ecr:{scope.region}:{registry_account}:repository/{serving_images.REPOSITORY}"
        self.job_role = aws.iam.Role(
            f"{name}-role",
            name=naming.job_role_name(scope.project, scope.env, model.name),
            description=f"Monitor job of {endpoint}: reads its capture, labels and package, writes monitoring/",
            assume_role_policy=_assume("sagemaker.amazonaws.com", scope),
            tags=tags,
            opts=child,
        )
        job_statements = [
            {"Sid": "ReadJobInputs", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [arn_of(args.artifacts_bucket_arn, job_prefix),
                          pulumi.Output.concat(args.artifacts_bucket_arn, "/", args.artifact_key),
                          arn_of(args.dataset_bucket_arn, capture_prefix),
                          arn_of(args.dataset_bucket_arn, labels_prefix),
                          arn_of(args.dataset_bucket_arn, stats_prefix)]},
            {"Sid": "ListJobInputs", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": [args.artifacts_bucket_arn, args.dataset_bucket_arn],
             "Condition": {"StringLike": {"s3:prefix": [f"{job_prefix}*", args.artifact_key, f"{capture_prefix}*",
                                                        f"{labels_prefix}*", f"{stats_prefix}*"]}}},
            {"Sid": "WriteResults", "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
             "Resource": arn_of(args.dataset_bucket_arn, results_prefix)},
            {"Sid": "PutJobMetrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
             # PutMetricData has no resource: the namespace condition is what limits it
             "Condition": {"StringEquals": {"cloudwatch:namespace": list(JOB_NAMESPACES)}}},
            {"Sid": "WriteLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": [processing_logs, pulumi.Output.concat(processing_logs, ":log-stream:*")]},
            {"Sid": "PullProcessingImage", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
             "Resource": repo_arn},
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            *kms_statements(scope, ["kms:Decrypt", "kms:GenerateDataKey"]),
        ]
        self.job_role_policy = aws.iam.RolePolicy(f"{name}-role-policy", role=self.job_role.name,
                                                  name="modelops-monitor-job", policy=policy_document(job_statements),
                                                  opts=child)

        # -- the pipeline and its role ----------------------------------------------------------
        account = scope.account_id
        pipeline_arn = account.apply(lambda acct: f"arn:{part}:sagemaker:{scope.region}:{acct}:pipeline/{pipeline_name}")
        jobs_arn = account.apply(lambda acct: f"arn:{part}:sagemaker:{scope.region}:{acct}:processing-job/pipelines-*")
        self.pipeline_role = aws.iam.Role(
            f"{name}-pipeline-role",
            name=naming.pipeline_role_name(scope.project, scope.env, model.name),
            description=f"SageMaker pipeline {pipeline_name}: runs its processing steps as the job role",
            assume_role_policy=_assume("sagemaker.amazonaws.com", scope),
            tags=tags,
            opts=child,
        )
        self.pipeline_role_policy = aws.iam.RolePolicy(
            f"{name}-pipeline-role-policy", role=self.pipeline_role.name, name="modelops-monitor-pipeline",
            policy=policy_document([
                {"Sid": "RunSteps", "Effect": "Allow",
                 "Action": ["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                            "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
                 "Resource": jobs_arn},
                {"Sid": "PassJobRole", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": self.job_role.arn,
                 "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
            ]),
            opts=child,
        )
        kms_arn = scope.kms_key_arn if scope.encryption == "kms" else None
        uri = lambda bucket, key: pulumi.Output.concat("s3://", bucket, "/", key)  # noqa: E731
        definition = pipeline_definition(
            image=serving_images.processing_image_uri(scope.region),
            role_arn=self.job_role.arn, instance_count=args.instance_count, region=scope.region, kms_key_arn=kms_arn,
            script_key=script_key, config_key=config_key, artifacts_bucket=args.artifacts_bucket,
            package_uri=uri(args.artifacts_bucket, args.artifact_key),
            labels_uri=uri(args.dataset_bucket, labels_prefix), stats_uri=uri(args.dataset_bucket, stats_prefix.rstrip("/")),
            bucket=args.dataset_bucket,
        )
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"ModelOps monitor job of {endpoint} ({', '.join(sorted(m.name for m in args.monitors))})"[:3072],
            role_arn=self.pipeline_role.arn,
            pipeline_definition=pulumi.Output.json_dumps(definition),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.script, self.config, self.job_role_policy,
                                                                 self.pipeline_role_policy,
                                                                 *args.depends_on]),
        )

        # -- the schedule and its role ------------------------------------------------------------
        self.scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            name=naming.scheduler_role_name(scope.project, scope.env, model.name),
            description=f"EventBridge Scheduler: starts pipeline {pipeline_name}, nothing else",
            assume_role_policy=_assume("scheduler.amazonaws.com", scope),
            tags=tags,
            opts=child,
        )
        self.scheduler_role_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-role-policy", role=self.scheduler_role.name, name="modelops-monitor-schedule",
            policy=policy_document([{"Sid": "StartPipeline", "Effect": "Allow",
                                     "Action": ["sagemaker:StartPipelineExecution"], "Resource": pipeline_arn}]),
            opts=child,
        )
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=naming.schedule_name(scope.project, scope.env, model.name),
            description=f"Runs the monitor job of {endpoint} {schedule}",
            schedule_expression=SCHEDULES[schedule],
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.pipeline.arn,
                role_arn=self.scheduler_role.arn,
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(maximum_retry_attempts=2,
                                                                         maximum_event_age_in_seconds=3600),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.scheduler_role_policy]),
        )
        self.pipeline_name = self.pipeline.pipeline_name
        self.schedule_name = self.schedule.name
        self.job_role_arn = self.job_role.arn
        self.register_outputs({"pipeline_name": self.pipeline_name, "schedule_name": self.schedule_name,
                               "job_role_arn": self.job_role_arn})

def _assume(service: str, scope: Scope) -> pulumi.Output[str]:
    return json_document({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
                       # confused-deputy guard: only the service acting for this account
                       "Condition": {"StringEquals": {"aws:SourceAccount": scope.account_id}}}],
    })
