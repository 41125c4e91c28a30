"""Physical AWS names derived from spec names: defined once, used by components and validation.

Names are deterministic (stable across runs, so an unchanged spec never renames anything)
and bounded: with a project of at most 16 characters, an environment of at most 10 and an
entity name of at most 20, every name below fits its AWS limit. Bucket names carry the
account ID to be globally unique.

Names are injective: two different (project, environment, entity) never share a name, in one
account or (buckets) anywhere. Spec names have single hyphens only and environments none,
so ``<project>-<env>-<entity>`` reads back unambiguously when the project has no hyphen;
a project with hyphens is followed by ``--``, which no spec name contains (project ``aa-bb``,
env ``cc`` gives ``aa-bb--cc-…``; project ``aa``, env ``bb``, entity ``cc-…`` gives ``aa-bb-cc-…``).
Projects without a hyphen keep the names they always had: nothing deployed is renamed.

Example::

    bucket_name("churn", "prod", "customers", "123456789012")
    # 'churn-prod-customers-123456789012'
"""

from __future__ import annotations

import re

from modelops.components import metrics

ENV_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,9}$")
#: entity names that would collide with names ModelOps derives for itself
RESERVED_NAMES = frozenset({"artifacts"})

#: AWS name length limits for what we derive
LIMITS = {
    "bucket": 63,
    "sagemaker": 63,
    "iam_role": 64,
    "alarm": 255,
    "sns_topic": 256,
    "glue": 255,
}


def prefix(project: str, env: str) -> str:
    """``<project>-<env>``, or ``<project>--<env>`` when the project has a hyphen (see above)."""
    return f"{project}--{env}" if "-" in project else f"{project}-{env}"


def bucket_name(project: str, env: str, dataset: str, account_id: str) -> str:
    """S3 bucket of a dataset; ``artifacts`` is the environment's model artifact bucket."""
    return f"{prefix(project, env)}-{dataset}-{account_id}"


def artifacts_bucket_name(project: str, env: str, account_id: str) -> str:
    return bucket_name(project, env, "artifacts", account_id)


def endpoint_name(project: str, env: str, model: str) -> str:
    return f"{prefix(project, env)}-{model}"


def versioned_name(project: str, env: str, model: str, content_hash: str) -> str:
    """A SageMaker model or endpoint configuration: immutable in AWS, so named by content."""
    return f"{prefix(project, env)}-{model}-{content_hash[:8]}"


def role_name(project: str, env: str, model: str) -> str:
    return f"{prefix(project, env)}-{model}-exec"


def job_role_name(project: str, env: str, model: str) -> str:
    """The role a model's monitor job (its processing steps) runs as."""
    return f"{prefix(project, env)}-{model}-mon-job"


def pipeline_role_name(project: str, env: str, model: str) -> str:
    return f"{prefix(project, env)}-{model}-mon-pipe"


def scheduler_role_name(project: str, env: str, model: str) -> str:
    return f"{prefix(project, env)}-{model}-mon-sched"


def pipeline_name(project: str, env: str, model: str) -> str:
    """The SageMaker pipeline of a model's monitor job."""
    return f"{prefix(project, env)}-{model}-monitor"


def schedule_name(project: str, env: str, model: str) -> str:
    """The EventBridge Scheduler schedule starting a model's monitor job."""
    return f"{prefix(project, env)}-{model}-monitor"


#: where a monitor job writes in its model's dataset bucket: ``<monitor>/latest.json``,
#: ``<monitor>/results/`` and the shard statistics under :data:`JOB_STATS_DIR`
RESULTS_PREFIX = "monitoring/"
#: the monitoring/ directory holding the job's per-run shard statistics (no monitor name
#: has an underscore, so it never collides with a monitor's results)
JOB_STATS_DIR = "_stats"


def job_prefix(model: str) -> str:
    """Where a model's monitor job script and config live in the artifacts bucket."""
    return f"monitoring/{model}/"


def package_group_name(project: str, env: str, model: str) -> str:
    return f"{prefix(project, env)}-{model}"


def alarm_name(project: str, env: str, monitor: str) -> str:
    return f"{prefix(project, env)}-{monitor}"


def variant_alarm_name(project: str, env: str, monitor: str, variant: str) -> str:
    """The alarm of ``monitor`` on another production variant (the canary): ``<alarm>--<variant>``.

    ``--`` keeps names injective: no monitor name contains it, so a monitor named
    ``<monitor>-canary`` never gets the canary alarm's name of ``<monitor>``.
    """
    return f"{alarm_name(project, env, monitor)}--{variant}"


def topic_name(project: str, env: str, channel: str) -> str:
    return f"{prefix(project, env)}-{channel}"


def kms_alias(project: str, env: str) -> str:
    return f"alias/{prefix(project, env)}"


def topics_kms_alias(project: str, env: str) -> str:
    """The key of the notification topics under ``encryption: sse-s3`` (no environment key)."""
    return f"alias/{prefix(project, env)}-topics"


def glue_database_name(project: str, env: str) -> str:
    return f"{project}_{env}".replace("-", "_")


def glue_table_name(dataset: str) -> str:
    return dataset.replace("-", "_")


def dashboard_name(project: str, env: str, page: int = 1) -> str:
    """The environment's dashboard; its further pages (over 166 models) get ``-2``, ``-3``..."""
    return prefix(project, env) if page == 1 else f"{prefix(project, env)}-{page}"


def autoscaling_resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def artifact_key(model: str, digest: str) -> str:
    """Content-addressed object key of a packaged model: ``models/<model>/<hex>/model.tar.gz``."""
    return f"models/{model}/{digest.removeprefix('sha256:')}/model.tar.gz"


def capture_prefix(model: str) -> str:
    """Where SageMaker data capture writes, inside the model's dataset bucket."""
    return f"capture/{model}"


def source_key(dataset: str, digest: str, filename: str) -> str:
    """Content-addressed object key of a dataset's uploaded source file."""
    return f"data/{digest.removeprefix('sha256:')}/{filename}"


def longest_names(project: str, env: str, entity: str) -> dict[str, tuple[str, int]]:
    """Every name derived from ``entity`` with its limit (for validation), with a 12-digit account."""
    account = "0" * 12
    return {
        "bucket": (bucket_name(project, env, entity, account), LIMITS["bucket"]),
        "endpoint": (versioned_name(project, env, entity, "0" * 8), LIMITS["sagemaker"]),
        "role": (role_name(project, env, entity), LIMITS["iam_role"]),
        "monitor job role": (scheduler_role_name(project, env, entity), LIMITS["iam_role"]),
        "alarm": (alarm_name(project, env, entity), LIMITS["alarm"]),
        "canary alarm": (variant_alarm_name(project, env, entity, metrics.CANARY_VARIANT), LIMITS["alarm"]),
    }


#: the Pulumi stack (and local state) of the project's model registry; no environment may be named so
REGISTRY_STACK = "registry"


def registry_bucket_name(project: str, account_id: str) -> str:
    """The project's registry bucket, shared by its environments: ``<project>-registry-<account>``."""
    return f"{prefix(project, REGISTRY_STACK)}-{account_id}"


def registry_group_name(project: str, model: str) -> str:
    """The registry's SageMaker model package group of ``model`` (one per model, every environment)."""
    return f"{prefix(project, REGISTRY_STACK)}-{model}"


def registry_kms_alias(project: str) -> str:
    return f"alias/{prefix(project, REGISTRY_STACK)}"


def registry_kms_alias_arn(partition: str, region: str, account_id: str, project: str) -> str:
    """The registry key's alias as an ARN: how another account names the key (an alias name
    alone is looked up in the caller's own account)."""
    return f"arn:{partition}:kms:{region}:{account_id}:{registry_kms_alias(project)}"


def deploy_role_name(project: str, env: str) -> str:
    """The role an environment's stacks are deployed as (``pulumi up --stack <env>…``, the CI
    role ``vars.AWS_DEPLOY_ROLE_ARN_<ENV>``), in the environment's account; ``env`` is
    :data:`REGISTRY_STACK` for the registry's. Made outside the stacks, under this name, so
    that the registry can grant it by ARN."""
    return f"{prefix(project, env)}-deploy"


def partition(region: str) -> str:
    """The AWS partition of ``region``: ``aws``, ``aws-cn`` or ``aws-us-gov``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def role_arn(partition: str, account_id: str, name: str) -> str:
    """The ARN of the IAM role ``name`` (path ``/``) in ``account_id``."""
    return f"arn:{partition}:iam::{account_id}:role/{name}"


def registry_key(model: str, digest: str, member: str = "model.tar.gz") -> str:
    """Content-addressed key in the registry: ``models/<model>/<hex>/<member>`` (the package,
    its ``card.json`` and ``baseline.json``), the same layout as :func:`artifact_key`."""
    return f"models/{model}/{digest.removeprefix('sha256:')}/{member}"


def registry_data_key(dataset: str, digest: str, filename: str) -> str:
    """Content-addressed key of the training data a published version was built from."""
    return f"datasets/{dataset}/{digest.removeprefix('sha256:')}/{filename}"
