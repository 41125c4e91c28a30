"""The model registry of a project: one immutable artifact bucket and one catalogue, every environment.

Its own Pulumi stack, ``registry`` (``stacks/Pulumi.registry.yaml``), deployed before any
environment and read by all of them: if each environment's shared stack declared it, every
environment would declare the same bucket, and prod would depend on dev's stack.

- a rotated KMS key of the registry;
- the bucket ``<project>-registry-<account>``: versioned, SSE-KMS with a bucket key, all
  public access blocked, ``BucketOwnerEnforced``, protected and retained whatever the
  environments say, and a bucket policy that denies requests without TLS and makes the
  bucket append-only: nobody may delete an object or one of its versions, change the
  versioning or add a lifecycle (that would expire versions). A put over an existing key
  only adds a version that versioning keeps; ``modelops publish`` never does one (it
  writes a key only when it is absent). Why not S3 Object Lock: see docs/registry.md;
- one SageMaker model package group per model: the catalogue, one package version per
  digest with its metrics, lineage and approval status (``modelops publish``).

Example::

    ModelRegistry("churn-registry", RegistryArgs.of(load_environment("modelops.yaml", "dev")))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable

import pulumi
import pulumi_aws as aws

from modelops.components import naming
from modelops.components.documents import json_document
from modelops.components.model import partition
from modelops.components.storage import private_access, tls_only_statement
from modelops.spec.resolved import Environment

MODEL_REGISTRY_TYPE = "modelops:index:ModelRegistry"

#: what the bucket policy denies every principal: the bucket can only grow
IMMUTABLE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration",
                     "s3:PutBucketVersioning")

#: stack outputs of the registry stack: a contract, name -> description
OUTPUTS: dict[str, str] = {
    "registryBucket": "S3 bucket of the project's published packages (models/<model>/<sha256>/model.tar.gz, card.json, baseline.json).",
    "registryKeyArn": "ARN of the KMS key encrypting the registry bucket.",
    "packageGroups": "Model name -> SageMaker model package group (one package version per digest).",
}


@dataclass(frozen=True)
class Reader:
    """An environment in another account than the registry's: the roles granted read access.

    Example::

        Reader(env="prod", account="333333333333", execution_roles=("churn-prod-churn-classifier-exec",),
               deploy_role="churn-prod-deploy")
    """

    env: str
    account: str
    #: the SageMaker execution roles of its models (``naming.role_name``), sorted
    execution_roles: tuple[str, ...]
    #: the role its stacks are deployed as (``naming.deploy_role_name``)
    deploy_role: str


@dataclass(frozen=True)
class RegistryArgs:
    """What the registry holds: the project's models, where, and its tags.

    Example::

        RegistryArgs(project="churn", region="eu-west-1", models=(("churn-classifier", "Predicts churn"),),
                     tags=(("cost-center", "ml-42"),))
    """

    project: str
    region: str
    #: (model name, description), sorted by name
    models: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...] = ()
    #: the registry's account (``registry.account``); None: the account deployed to
    account: str | None = None
    #: the environments in other accounts, sorted by name: granted read by bucket and key policy
    readers: tuple[Reader, ...] = ()

    @classmethod
    def of(cls, env: Environment, envs: Iterable[Environment] = ()) -> "RegistryArgs":
        """The registry of ``env``'s project (an overlay adds no model: any environment gives the
        same), read by ``envs``, the project's environments: those in another account get read grants."""
        tags = {**dict(env.tags), "modelops:project": env.project, "modelops:environment": naming.REGISTRY_STACK,
                "modelops:owner": env.owner, "managed-by": "modelops"}
        models = tuple((name, env.models[name].description) for name in sorted(env.models))
        readers = tuple(
            Reader(e.env, e.account, tuple(naming.role_name(e.project, e.env, m) for m in sorted(e.models)),
                   naming.deploy_role_name(e.project, e.env))
            for e in sorted(envs, key=lambda e: e.env)
            if e.account is not None and env.registry_account is not None and e.account != env.registry_account
        )
        return cls(env.project, env.region, models, tuple(tags.items()), env.registry_account, readers)


def reader_roles(readers: Iterable[Reader], region: str, *, execution: bool = True) -> tuple[list[str], list[str]]:
    """(account roots, exact role ARNs) of ``readers``: the deploy roles, and with ``execution``
    their execution roles too. A policy grants the roots on the condition that the caller is one
    of the roles (``aws:PrincipalArn``): a role principal must exist when the policy is written
    (the registry is deployed before the environments that make their execution roles) and
    breaks when its role is made again; the condition does neither, and names the same roles."""
    part = partition(region)
    roots, roles = set(), set()
    for reader in readers:
        roots.add(f"arn:{part}:iam::{reader.account}:root")
        names = (*reader.execution_roles, reader.deploy_role) if execution else (reader.deploy_role,)
        roles.update(naming.role_arn(part, reader.account, n) for n in names)
    return sorted(roots), sorted(roles)


def reader_statements(bucket_arn: str, readers: tuple[Reader, ...], region: str) -> list[dict]:
    """The bucket policy's grants to the environments in other accounts: ``s3:GetObject`` on the
    packages to their execution and deploy roles, ``s3:ListBucket`` of ``models/`` to their deploy
    roles (the preview lookup, ``aws.s3.get_objects``). An execution role's own policy narrows its
    read to the keys its endpoint serves: across accounts, both must allow."""
    if not readers:
        return []
    roots, every_role = reader_roles(readers, region)
    _, deploy_roles = reader_roles(readers, region, execution=False)
    return [
        {"Sid": "ReadPackagesFromEnvironmentAccounts", "Effect": "Allow", "Principal": {"AWS": roots},
         "Action": "s3:GetObject", "Resource": f"{bucket_arn}/models/*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": every_role}}},
        {"Sid": "ListPackagesFromEnvironmentAccounts", "Effect": "Allow", "Principal": {"AWS": roots},
         "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"ArnEquals": {"aws:PrincipalArn": deploy_roles}, "StringLike": {"s3:prefix": "models/*"}}},
    ]


def registry_policy(bucket_arn: str, readers: tuple[Reader, ...] = (), region: str = "us-east-1") -> str:
    """The bucket policy: TLS only, append-only for every principal (see the module docstring),
    and read by the ``readers`` in other accounts (:func:`reader_statements`)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                tls_only_statement(bucket_arn),
                {
                    "Sid": "DenyDeletingVersions",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    "Resource": f"{bucket_arn}/*",
                },
                {
                    "Sid": "DenyExpiringOrSuspendingVersions",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:PutLifecycleConfiguration", "s3:PutBucketVersioning"],
                    "Resource": bucket_arn,
                },
                *reader_statements(bucket_arn, readers, region),
            ],
        },
        sort_keys=True,
    )


def reader_key_statements(readers: tuple[Reader, ...], region: str) -> list[dict]:
    """The key policy's grants to the environments in other accounts: ``kms:Decrypt`` through S3
    (the packages' SSE-KMS) to their execution and deploy roles, ``kms:DescribeKey`` to their
    deploy roles (the preview lookup, ``aws.kms.get_key`` of the alias ARN). In a key policy,
    ``Resource: "*"`` is the key itself."""
    if not readers:
        return []
    roots, every_role = reader_roles(readers, region)
    _, deploy_roles = reader_roles(readers, region, execution=False)
    return [
        {"Sid": "DecryptPackagesFromEnvironmentAccounts", "Effect": "Allow", "Principal": {"AWS": roots},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": every_role},
                       "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
        {"Sid": "DescribeKeyFromEnvironmentAccounts", "Effect": "Allow", "Principal": {"AWS": roots},
         "Action": "kms:DescribeKey", "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": deploy_roles}}},
    ]


def _key_policy(account_id: pulumi.Output[str], region: str, readers: tuple[Reader, ...] = ()) -> pulumi.Input[str]:
    root = account_id.apply(lambda acct: f"arn:{partition(region)}:iam::{acct}:root")
    # The default key policy: the account administers the key through IAM, so that it never
    # becomes unmanageable; readers and publishers of the account are granted its use by IAM
    # policies, the environments of other accounts by this policy (and their own IAM policies).
    return json_document(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AccountAdministersKey", "Effect": "Allow", "Principal": {"AWS": root},
                 "Action": "kms:*", "Resource": "*"},
                *reader_key_statements(readers, region),
            ],
        }
    )


class ModelRegistry(pulumi.ComponentResource):
    """The project's registry: key, append-only bucket, one model package group per model.

    Example::

        ModelRegistry("churn-registry", RegistryArgs.of(env))

    Outputs::

        bucket          Output[str]  The registry bucket's name.
        bucket_arn      Output[str]  Its ARN.
        key_arn         Output[str]  The registry's KMS key.
        package_groups  Output[dict[str, str]]  Model -> model package group name.

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MODEL_REGISTRY_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # never deleted by a stack change: losing the registry loses every version ever deployed
        kept = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        tags = dict(args.tags)
        # the account the spec names, else the one deployed to
        account_id = (pulumi.Output.from_input(args.account) if args.account is not None else
                      aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id)

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"ModelOps {args.project}: model registry",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=_key_policy(account_id, args.region, args.readers),
            tags=tags,
            opts=kept,
        )
        aws.kms.Alias(f"{name}-key-alias", name=naming.registry_kms_alias(args.project),
                      target_key_id=self.key.key_id, opts=child)
        self.resource = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=account_id.apply(lambda acct: naming.registry_bucket_name(args.project, acct)),
            force_destroy=False,
            tags=tags,
            opts=kept,
        )
        bucket_id = self.resource.bucket
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=self.key.arn),
                bucket_key_enabled=True,
            )],
            opts=child,
        )
        self.public_access_block, self.ownership = private_access(name, bucket_id, child)
        # After the versioning: the policy denies changing it. After the public access block:
        # S3 rejects policies while a block is being changed.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=self.resource.arn.apply(lambda arn: registry_policy(arn, args.readers, args.region)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning, self.public_access_block]),
        )
        self.groups: dict[str, aws.sagemaker.ModelPackageGroup] = {}
        for model, description in args.models:
            self.groups[model] = aws.sagemaker.ModelPackageGroup(
                f"{name}-group-{model}",
                model_package_group_name=naming.registry_group_name(args.project, model),
                model_package_group_description=(description or f"Published versions of {model}")[:1024],
                tags=tags,
                opts=kept,
            )

        self.bucket = self.resource.bucket
        self.bucket_arn = self.resource.arn
        self.key_arn = self.key.arn
        self.package_groups = (pulumi.Output.all(**{m: g.model_package_group_name for m, g in self.groups.items()})
                               if self.groups else pulumi.Output.from_input({}))
        self.register_outputs({"bucket": self.bucket, "bucket_arn": self.bucket_arn, "key_arn": self.key_arn,
                               "package_groups": self.package_groups})

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        """Every :data:`OUTPUTS` key with its value."""
        return {"registryBucket": self.bucket, "registryKeyArn": self.key_arn, "packageGroups": self.package_groups}


def program(env: Environment, envs: Iterable[Environment] = ()) -> Callable[[], None]:
    """The Pulumi program of the ``registry`` stack of ``env``'s project, read by ``envs`` (every
    environment of the project: those in other accounts are granted read).

    Example::

        program(load_environment("modelops.yaml", "dev"), check("modelops.yaml")[1].values())()
    """
    args = RegistryArgs.of(env, envs)

    def body() -> None:
        registry = ModelRegistry(naming.prefix(env.project, naming.REGISTRY_STACK), args)
        outputs = registry.stack_outputs()
        for key in OUTPUTS:
            pulumi.export(key, outputs[key])

    return body
