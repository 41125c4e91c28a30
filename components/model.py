"""A model: artifact, registry entry, least-privilege execution role, SageMaker endpoint.

SageMaker models and endpoint configurations are immutable in AWS: both are named by a
hash of what defines them (``naming.versioned_name``), so a change creates a new one
before the old one is deleted (Pulumi's default create-before-delete replacement) and the
endpoint, whose name never changes, switches to it with a blue/green deployment that
rolls back automatically when one of the model's own alarms fires.

Every served version (primary, canary, shadow) is read from the project's registry, where
``modelops publish`` put it: ``s3://<project>-registry-<account>/models/<model>/<hex>/model.tar.gz``
(``naming.registry_key``). The program looks each one up through a data source
(``aws.s3.get_objects``, at preview as at update): a version the registry does not hold
fails the run with :class:`UnpublishedVersion`, before any SageMaker model names it. The
execution role may read exactly those keys, and decrypt them with the registry's key
through S3, nothing else of the registry.

Example::

    ep = ModelEndpoint("churn-dev-model-churn-classifier", ModelEndpointArgs(model=m, scope=scope, ...))
    ep.grant_invoke(app_role)
    ep.metric_latency("p99")      # MetricRef in Microseconds
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from modelops.components import metrics, naming, serving_images
from modelops.components.documents import json_document
from modelops.errors import Unpublished
from modelops.components.rollout import deployment_config
from modelops.components.storage import Scope, kms_statements, policy_document
from modelops.spec.resolved import Model as ModelSpec

MODEL_ENDPOINT_TYPE = "modelops:index:ModelEndpoint"

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALE_IN_COOLDOWN = 300
SCALE_OUT_COOLDOWN = 60


#: the AWS partition of a region (its home is naming: no Pulumi needed to know it)
partition = naming.partition


def content_hash(value: object) -> str:
    """Hex SHA-256 of a JSON-able value (sorted keys): the identity of an immutable resource."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def captures(model: ModelSpec) -> bool:
    """Whether the model's endpoint captures its requests and responses. Serverless
    endpoints cannot (SageMaker rejects the configuration)."""
    return model.serving.data_capture.enabled and model.serving.serverless is None


@dataclass(frozen=True)
class ModelEndpointArgs:
    """A resolved model (with its artifact attached) and the environment around it.

    ``registry_bucket`` and ``registry_key_arn``: the project's registry (deterministic name;
    the key found by its alias), which every served version is read from.

    ``rollback_alarms`` are the alarm names (``naming.alarm_name``) of the model's monitors:
    plain strings, so the endpoint and its alarms do not depend on each other.

    Example::

        ModelEndpointArgs(model=env.models["churn-classifier"], scope=scope,
                          artifacts_bucket=artifacts.bucket, artifacts_bucket_arn=artifacts.arn,
                          dataset_bucket=customers.bucket, dataset_bucket_arn=customers.bucket_arn,
                          registry_bucket="churn-registry-123456789012",
                          registry_key_arn="arn:aws:kms:eu-west-1:123456789012:key/…",
                          rollback_alarms=("churn-dev-churn-latency",))
    """

    model: ModelSpec
    scope: Scope
    artifacts_bucket: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    dataset_bucket: pulumi.Input[str]
    dataset_bucket_arn: pulumi.Input[str]
    registry_bucket: pulumi.Input[str]
    registry_key_arn: pulumi.Input[str]
    rollback_alarms: tuple[str, ...] = ()


class UnpublishedVersion(pulumi.RunError, Unpublished):
    """A version the model serves is not in the registry: the program stops before any model names it.

    A ``pulumi.RunError``: the engine prints its one line, no traceback. ``path`` is the spec
    path that sets the version (``models.churn.serving.canary.version``); the toolchain adds
    the file and line (``modelops.registry.pins``).
    """

    def __init__(self, model: str, variant: str, digest: str, path: str, uri: str) -> None:
        self.model, self.variant, self.digest, self.path, self.uri = model, variant, digest, path, uri
        super().__init__(
            f"{path}: {model} {variant} version {digest} is not in the registry ({uri}); publish it "
            f"(`modelops publish {model}` on the commit that built it) or pin a published version")


def version_path(model: ModelSpec, variant: str) -> str:
    """The spec path that sets the version a variant serves."""
    if variant == metrics.PRIMARY_VARIANT:
        return f"models.{model.name}.version" if model.version else f"models.{model.name}"
    return f"models.{model.name}.serving.{variant}.version"


def served_versions(model: ModelSpec) -> dict[str, str]:
    """Variant -> the digest it serves: the primary's artifact, then the canary's and shadow's pins."""
    assert model.artifact is not None
    versions = {metrics.PRIMARY_VARIANT: model.artifact.digest}
    if model.serving.canary is not None:
        versions[metrics.CANARY_VARIANT] = model.serving.canary.version
    if model.serving.shadow is not None:
        versions[metrics.SHADOW_VARIANT] = model.serving.shadow.version
    return versions


def _published(model: ModelSpec, variant: str, digest: str, key: str, bucket: str, keys: list[str] | None) -> str:
    """The version's registry URL, once the lookup found its key; :class:`UnpublishedVersion` otherwise."""
    uri = f"s3://{bucket}/{key}"
    if key not in (keys or []):
        raise UnpublishedVersion(model.name, variant, digest, version_path(model, variant), uri)
    return uri


def variant_instances(variant: str, primary: int) -> int:
    """Instances a variant starts with. A canary serves live traffic: it gets the primary's
    floor up to 2, so that a fleet that survives one failure (SageMaker.4) does not route its
    canary share to a single instance; a shadow's responses are never returned, one is enough.
    """
    if variant == metrics.PRIMARY_VARIANT:
        return primary
    return min(primary, 2) if variant == metrics.CANARY_VARIANT else 1


class ModelEndpoint(pulumi.ComponentResource):
    """Serving of one spec model: role, artifact, registry, SageMaker model/config/endpoint, scaling.

    Example::

        ModelEndpoint("churn-dev-model-churn-classifier", args)

    Outputs::

        endpoint_name         Output[str]  The endpoint's name (stable across versions).
        endpoint_arn          Output[str]  The endpoint's ARN.
        endpoint_config_name  Output[str]  The current endpoint configuration (content-addressed).
        model_name            Output[str]  The primary variant's SageMaker model (content-addressed).
        role_arn              Output[str]  The execution role SageMaker assumes.
        artifact_key          Output[str]  Object key of the primary artifact in the artifacts bucket.
        package_group_name    Output[str]  The model registry group of this model.

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MODEL_ENDPOINT_TYPE, name, None, opts)
        model = args.model
        scope = args.scope
        if model.artifact is None:
            raise ValueError(
                f"model {model.name!r} has no artifact: attach one first "
                "(modelops.ml.artifacts.attach_artifacts builds or locates it)"
            )
        artifact = model.artifact
        self.spec = model
        self.scope = scope
        self._endpoint = naming.endpoint_name(scope.project, scope.env, model.name)
        part = partition(scope.region)
        child = pulumi.ResourceOptions(parent=self)
        tags = scope.tag_dict()
        serving = model.serving
        self.captures = captures(model)

        # -- execution role ------------------------------------------------------------------
        role_name = naming.role_name(scope.project, scope.env, model.name)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=role_name,
            description=f"SageMaker execution role of {self._endpoint}",
            assume_role_policy=json_document(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            # Confused-deputy guard: only SageMaker acting for this account.
                            "Condition": {"StringEquals": {"aws:SourceAccount": scope.account_id}},
                        }
                    ],
                }
            ),
            tags=tags,
            opts=child,
        )
        registry_account = serving_images.REGISTRY_ACCOUNT[scope.region]
        repo_arn = f"arn:{part}:ecr:{scope.region}:{registry_account}:repository/{serving_images.REPOSITORY}"
        capture = naming.capture_prefix(model.name)
        log_group = f"/aws/sagemaker/Endpoints/{self._endpoint}"
        log_arn = scope.account_id.apply(lambda acct: f"arn:{part}:logs:{scope.region}:{acct}:log-group:{log_group}")
        versions = served_versions(model)
        registry_arn = pulumi.Output.concat(f"arn:{part}:s3:::", args.registry_bucket)
        statements: list[dict] = [
            {
                # exactly the packages this endpoint serves, nothing else of the registry
                "Sid": "ReadServedPackages",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [pulumi.Output.concat(registry_arn, "/", naming.registry_key(model.name, d))
                             for d in sorted(set(versions.values()))],
            },
            {
                # the registry's key, only through S3 (SSE-KMS of those objects)
                "Sid": "DecryptServedPackages",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": args.registry_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{scope.region}.amazonaws.com"}},
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [log_arn, pulumi.Output.concat(log_arn, ":log-stream:*")],
            },
            {
                "Sid": "PullServingImage",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": repo_arn,
            },
            {
                # The one action AWS only authorises on every resource: it returns a registry login.
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            },
            *kms_statements(scope, ["kms:Decrypt", "kms:GenerateDataKey"]),
        ]
        if self.captures:
            statements.append(
                {
                    "Sid": "WriteDataCapture",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": pulumi.Output.concat(args.dataset_bucket_arn, "/", capture, "/*"),
                }
            )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.name,
            name="modelops-serving",
            policy=policy_document(statements),
            opts=child,
        )

        # -- the environment's copy of the artifact (the monitor job's input), model package group --
        key = naming.artifact_key(model.name, artifact.digest)
        self.artifact = aws.s3.BucketObjectv2(
            f"{name}-artifact",
            bucket=args.artifacts_bucket,
            key=key,
            source=pulumi.FileAsset(artifact.path),
            content_type="application/gzip",
            tags=tags,
            opts=child,
        )
        self.package_group = aws.sagemaker.ModelPackageGroup(
            f"{name}-package-group",
            model_package_group_name=naming.package_group_name(scope.project, scope.env, model.name),
            model_package_group_description=(model.description or f"Versions of {model.name}")[:1024],
            tags=tags,
            opts=child,
        )

        # -- SageMaker models, one per served version ------------------------------------------
        image = serving_images.image_uri(scope.region, artifact.framework_version)
        self.models: dict[str, aws.sagemaker.Model] = {}
        self._model_names: dict[str, str] = {}
        invoke = pulumi.InvokeOutputOptions(parent=self)
        for variant, digest in versions.items():
            variant_key = naming.registry_key(model.name, digest)
            identity = {"image": image, "key": variant_key, "role": role_name, "isolation": True, "store": "registry"}
            model_name = naming.versioned_name(scope.project, scope.env, model.name, content_hash(identity))
            self._model_names[variant] = model_name
            # the data source: the registry holds the version (a preview fails here too)
            found = aws.s3.get_objects_output(bucket=args.registry_bucket, prefix=variant_key, max_keys=1, opts=invoke)
            model_data_url = pulumi.Output.all(args.registry_bucket, found.keys).apply(
                lambda got, variant=variant, digest=digest, key=variant_key: _published(model, variant, digest, key, *got))
            depends = [self.role_policy]
            self.models[variant] = aws.sagemaker.Model(
                f"{name}-model-{variant}",
                name=model_name,
                execution_role_arn=self.role.arn,
                # The scikit-learn container needs no network: the model data is mounted by SageMaker.
                enable_network_isolation=True,
                primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                    image=image,
                    mode="SingleModel",
                    model_data_url=model_data_url,
                ),
                tags=tags,
                # Never delete first: the endpoint keeps serving the old model until the switch.
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends, delete_before_replace=False),
            )

        # -- endpoint configuration -------------------------------------------------------------
        initial_count = serving.instance_count
        if serving.autoscaling is not None:
            initial_count = min(max(initial_count, serving.autoscaling.min), serving.autoscaling.max)
        canary_weight = serving.canary.weight if serving.canary is not None else 0.0

        def variant_args(variant: str, weight: float) -> dict:
            common = {"variant_name": variant, "model_name": self.models[variant].name, "initial_variant_weight": weight}
            if serving.serverless is not None:
                common["serverless_config"] = {
                    "memory_size_in_mb": serving.serverless.memory_mb,
                    "max_concurrency": serving.serverless.max_concurrency,
                }
            else:
                common["instance_type"] = serving.instance_type
                common["initial_instance_count"] = variant_instances(variant, initial_count)
            return common

        production = [variant_args(metrics.PRIMARY_VARIANT, round(1.0 - canary_weight, 6))]
        if serving.canary is not None:
            production.append(variant_args(metrics.CANARY_VARIANT, canary_weight))
        shadows = []
        if serving.shadow is not None:
            # A shadow variant receives (its weight / the production weight) of the traffic, mirrored.
            shadows.append(variant_args(metrics.SHADOW_VARIANT, serving.shadow.sample_percent / 100.0))

        capture_uri = pulumi.Output.concat("s3://", args.dataset_bucket, "/", capture)
        kms_arn = scope.kms_key_arn if scope.encryption == "kms" else None
        data_capture = None
        if self.captures:
            data_capture = aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True,
                initial_sampling_percentage=serving.data_capture.sample_percent,
                destination_s3_uri=capture_uri,
                kms_key_id=kms_arn,
                capture_options=[
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Input"),
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Output"),
                ],
                capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    csv_content_types=["text/csv"], json_content_types=["application/json"]
                ),
            )
        config_identity = {
            "models": self._model_names,
            "production": [{k: v for k, v in p.items() if k != "model_name"} for p in production],
            "shadow": [{k: v for k, v in s.items() if k != "model_name"} for s in shadows],
            "capture": [self.captures, serving.data_capture.sample_percent, capture],
            "encryption": scope.encryption,
        }
        config_name = naming.versioned_name(scope.project, scope.env, model.name, content_hash(config_identity))
        self.endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=config_name,
            production_variants=production,
            shadow_production_variants=shadows or None,
            data_capture_config=data_capture,
            # SageMaker rejects a storage-volume key for serverless variants (they have no volume).
            kms_key_arn=kms_arn if serving.serverless is None else None,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )

        # -- endpoint -------------------------------------------------------------------------
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=self._endpoint,
            endpoint_config_name=self.endpoint_config.name,
            # blue/green, shifting traffic as serving.rollout says, rolling back on the model's alarms
            deployment_config=deployment_config(serving.rollout, args.rollback_alarms),
            tags=tags,
            opts=child,
        )

        # -- autoscaling ----------------------------------------------------------------------
        # Application Auto Scaling owns the variant's desired instance count. That count lives on
        # the endpoint, not on any property Pulumi manages (the endpoint has no count, and the
        # configuration's initial count is immutable), so there is nothing to ignore_changes
        # on: an apply that leaves the configuration alone never touches the live capacity,
        # and the target's min/max are ours, from the spec. What does reset capacity is a new
        # configuration (a new version or new settings): its fleet starts at
        # ``initial_count`` (instance_count clamped into [min, max]) and the policy scales it
        # from there, which is why the floor is ``autoscaling.min``. SageMaker refuses to change
        # the instance type of a variant registered for scaling: change it in two applies
        # (drop ``autoscaling``, then restore it).
        self.scaling_target: aws.appautoscaling.Target | None = None
        self.scaling_policy: aws.appautoscaling.Policy | None = None
        if serving.autoscaling is not None and serving.serverless is None:
            resource_id = naming.autoscaling_resource_id(self._endpoint, metrics.PRIMARY_VARIANT)
            self.scaling_target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="sagemaker",
                resource_id=resource_id,
                scalable_dimension=SCALABLE_DIMENSION,
                min_capacity=serving.autoscaling.min,
                max_capacity=serving.autoscaling.max,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoint]),
            )
            self.scaling_policy = aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                name=f"{self._endpoint}-invocations",
                policy_type="TargetTrackingScaling",
                service_namespace=self.scaling_target.service_namespace,
                resource_id=self.scaling_target.resource_id,
                scalable_dimension=self.scaling_target.scalable_dimension,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=float(serving.autoscaling.target_invocations),
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                    ),
                    scale_in_cooldown=SCALE_IN_COOLDOWN,
                    scale_out_cooldown=SCALE_OUT_COOLDOWN,
                ),
                opts=child,
            )

        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn
        self.endpoint_config_name = self.endpoint_config.name
        self.model_name = self.models[metrics.PRIMARY_VARIANT].name
        self.role_arn = self.role.arn
        self.artifact_key = self.artifact.key
        self.package_group_name = self.package_group.model_package_group_name
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "model_name": self.model_name,
                "role_arn": self.role_arn,
                "artifact_key": self.artifact_key,
                "package_group_name": self.package_group_name,
            }
        )

    @property
    def physical_name(self) -> str:
        """The endpoint's deterministic name (a plain string, known before deployment)."""
        return self._endpoint

    # -- grants ------------------------------------------------------------------------------

    def grant_invoke(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` invoke this endpoint, and nothing else.

        Example::

            churn.grant_invoke(app_role)
        """
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-invoke-{role.pulumi_resource_name}",
            role=role.name,
            name=f"modelops-invoke-{self.spec.name}",
            policy=policy_document(
                [
                    {
                        "Sid": "InvokeEndpoint",
                        "Effect": "Allow",
                        "Action": ["sagemaker:InvokeEndpoint"],
                        "Resource": self.endpoint.arn,
                    }
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # -- metrics (defaults documented in modelops.components.metrics) -----------------------------------

    def metric_latency(self, statistic: str = "p99") -> metrics.MetricRef:
        """ModelLatency of the primary variant, in MICROseconds (period 1 minute).

        Example::

            churn.metric_latency("p90").statistic   # 'p90'
        """
        return metrics.endpoint_latency(self._endpoint, statistic)

    def metric_errors(self) -> metrics.MetricRef:
        """5XX invocation errors of the primary variant (Sum, 1 minute)."""
        return metrics.endpoint_errors(self._endpoint)

    def metric_invocations(self) -> metrics.MetricRef:
        """Invocations of the primary variant (Sum, 1 minute)."""
        return metrics.endpoint_invocations(self._endpoint)

    def metric_cpu(self) -> metrics.MetricRef:
        """CPU utilisation of the primary variant's instances (Average percent, 1 minute)."""
        return metrics.endpoint_cpu(self._endpoint)

    def metric_memory(self) -> metrics.MetricRef:
        """Memory utilisation of the primary variant's instances (Average percent, 1 minute)."""
        return metrics.endpoint_memory(self._endpoint)

    def metric_drift(self) -> metrics.MetricRef:
        """Largest feature PSI published by ``modelops drift`` (Maximum, 1 hour)."""
        return metrics.drift_metric(self._endpoint)

    def metric_job(self, metric: str) -> metrics.MetricRef:
        """What the model's monitor job publishes for ``metric`` (``metrics.JOB_METRICS``; hourly)."""
        return metrics.job_metric(self._endpoint, metric)
