"""The registry as AWS holds it: the append-only bucket and the model package groups.

:class:`Registry` reads and writes one project's registry through boto3 clients of any
target (the embedded emulator, a loopback emulator, real AWS): content-addressed objects
written only when absent, and one model package version per digest, found by the digest
recorded in its customer metadata.

Example::

    reg = Registry.at(clients, "churn")
    reg.put_absent("models/churn-classifier/<hex>/model.tar.gz", data)    # 'written' or 'present'
    reg.version_of("churn-classifier", "sha256:…")                          # the package version, or None
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from modelops.components import naming
from modelops.errors import ApplyError, UsageError

#: customer metadata key of a package version's artifact digest (the version's identity)
DIGEST_KEY = "modelops:digest"
#: customer metadata key prefix of a version's approval for one environment: ``modelops:approved:<env>``
APPROVED_PREFIX = "modelops:approved:"
#: customer metadata key prefix of a version's metrics (the model card's, at publish)
METRIC_PREFIX = "metric:"
#: SageMaker's limits: a metadata value, an approval description
MAX_METADATA_VALUE = 256
MAX_APPROVAL_DESCRIPTION = 1024
#: what a metadata value may hold (SageMaker's pattern: letters, digits, spaces, ``_.:/=+-@``)
_NOT_IN_VALUE = re.compile(r"[^\w\s.:/=+\-@]")


def fits_metadata(text: str) -> bool:
    """Whether SageMaker accepts ``text`` as a customer metadata value as it is."""
    return len(text) <= MAX_METADATA_VALUE and not _NOT_IN_VALUE.search(text)


def metadata_value(text: str) -> str:
    """``text`` as a customer metadata value: characters SageMaker refuses dropped, spaces
    collapsed, at most 256 characters."""
    return " ".join(_NOT_IN_VALUE.sub("", text).split())[:MAX_METADATA_VALUE]
#: objects larger than this are compared by streaming, never read whole
_CHUNK = 1 << 20


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Registry:
    """One project's registry at one target: bucket name, package groups, clients."""

    clients: Any
    project: str
    account: str
    #: where, for messages: a URL or "AWS"
    where: str = ""

    @classmethod
    def at(cls, clients: Any, project: str, where: str = "", account: str | None = None) -> "Registry":
        """The registry of ``project`` in ``account`` (the spec's ``registry.account``), else in the
        account of ``clients``' credentials."""
        where = where or str(getattr(clients, "url", ""))
        if account is not None:
            return cls(clients, project, account, where)
        try:
            account = clients.client("sts").get_caller_identity()["Account"]
        except (ClientError, BotoCoreError) as exc:
            raise UsageError(f"cannot reach {where or 'AWS'} to find the registry ({type(exc).__name__}: {exc}); "
                             "check the credentials (--aws) or the --endpoint-url") from exc
        return cls(clients, project, str(account), where)

    @property
    def bucket(self) -> str:
        return naming.registry_bucket_name(self.project, self.account)

    def group(self, model: str) -> str:
        return naming.registry_group_name(self.project, model)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- the bucket ------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the registry bucket exists at the target."""
        try:
            self.clients.client("s3").head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            if _code(exc) in ("403", "AccessDenied", "Forbidden"):
                raise UsageError(f"the registry bucket {self.bucket} at {self.where or 'the target'} refuses this "
                                 "caller (403): grant its role read access (docs/registry.md, who may read them)") from exc
            raise
        return True

    def require(self) -> None:
        if not self.exists():
            raise UsageError(f"the registry bucket {self.bucket} does not exist at {self.where or 'the target'}; "
                             "deploy it first: `pulumi up --stack registry` (AWS), or run `modelops publish` "
                             "without --aws/--endpoint-url to start one in the local emulator")

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.clients.client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def digest_of(self, key: str) -> str:
        """``sha256:`` of the object's bytes, streamed."""
        body = self.clients.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"]
        sha = hashlib.sha256()
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            sha.update(chunk)
        return f"sha256:{sha.hexdigest()}"

    def read(self, key: str) -> bytes | None:
        try:
            return self.clients.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> tuple[str, str | None]:
        """Write ``data`` at ``key`` only when the key is absent: ``("written" | "present", version id)``.

        A key that holds other bytes is refused (an ApplyError): a content-addressed key
        never changes. The write itself is conditional (``If-None-Match: *``), so two
        publishers racing for one key cannot both write it.
        """
        want = f"sha256:{hashlib.sha256(data).hexdigest()}"
        found = self.head(key)
        if found is None:
            try:
                put = self.clients.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data,
                                                           ContentType=content_type, IfNoneMatch="*")
                return "written", put.get("VersionId")
            except ClientError as exc:
                if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise
            found = self.head(key) or {}
        have = self.digest_of(key)
        if have != want:
            raise ApplyError(f"{self.uri(key)} already holds other bytes ({have}, not {want}); registry keys are "
                             "immutable: nothing was written (a package is published under its own digest)")
        return "present", found.get("VersionId")

    # -- the catalogue ---------------------------------------------------------------------------

    def versions(self, model: str) -> Iterator[dict[str, Any]]:
        """Every package version of ``model``, oldest first, described (metadata, metrics, status)."""
        sm = self.clients.client("sagemaker")
        token = None
        arns: list[tuple[int, str]] = []
        while True:
            kwargs: dict[str, Any] = {"ModelPackageGroupName": self.group(model), "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            try:
                page = sm.list_model_packages(**kwargs)
            except ClientError as exc:
                if _code(exc) in ("ValidationException", "ResourceNotFound"):
                    return
                raise
            arns += [(int(s.get("ModelPackageVersion") or 0), s["ModelPackageArn"])
                     for s in page.get("ModelPackageSummaryList", [])]
            token = page.get("NextToken")
            if not token:
                break
        for _, arn in sorted(arns):
            yield sm.describe_model_package(ModelPackageName=arn)

    def version_of(self, model: str, digest: str) -> dict[str, Any] | None:
        """The package version of ``model`` registered for ``digest``, or None."""
        for described in self.versions(model):
            if (described.get("CustomerMetadataProperties") or {}).get(DIGEST_KEY) == digest:
                return described
        return None

    def approve(self, model: str, digest: str, env: str, note: str) -> dict[str, Any]:
        """Mark the package version of ``digest`` approved for ``env``; returns what the version now says.

        SageMaker lets a version's approval status, approval description and customer
        metadata be updated (``UpdateModelPackage``), never its metrics or container: the
        status becomes ``Approved``, ``modelops:approved:<env>`` records ``note`` (when, by
        whom, from which commit), and the description lists every environment it is
        approved for. The whole metadata map is sent, so a service that replaces the map
        and one that merges it both end with every earlier key. Raises an ApplyError when
        the version is not registered.
        """
        described = self.version_of(model, digest)
        if described is None:
            raise ApplyError(f"{model} {digest} is not in the registry ({self.group(model)} at {self.where or 'the target'}); "
                             f"publish it: `modelops publish {model}` on the commit that built it")
        metadata = dict(described.get("CustomerMetadataProperties") or {})
        key = f"{APPROVED_PREFIX}{env}"
        metadata[key] = metadata_value(note)
        envs = sorted(k.removeprefix(APPROVED_PREFIX) for k in metadata if k.startswith(APPROVED_PREFIX))
        description = f"approved for {', '.join(envs)} by modelops promote"[:MAX_APPROVAL_DESCRIPTION]
        sm = self.clients.client("sagemaker")
        sm.update_model_package(ModelPackageArn=described["ModelPackageArn"], ModelApprovalStatus="Approved",
                                ApprovalDescription=description, CustomerMetadataProperties=metadata)
        after = sm.describe_model_package(ModelPackageName=described["ModelPackageArn"])
        recorded = (after.get("CustomerMetadataProperties") or {}).get(key)
        if after.get("ModelApprovalStatus") != "Approved" or recorded != metadata[key]:
            raise ApplyError(f"{described['ModelPackageArn']}: the approval for {env} did not stick "
                             f"(status {after.get('ModelApprovalStatus')}, {key}={recorded!r})")
        return {"package_arn": described["ModelPackageArn"], "package_version": after.get("ModelPackageVersion"),
                "status": "Approved", "metadata_key": key, "note": metadata[key], "approved_for": envs}

    def group_exists(self, model: str) -> bool:
        try:
            self.clients.client("sagemaker").describe_model_package_group(ModelPackageGroupName=self.group(model))
        except ClientError as exc:
            if _code(exc) in ("ValidationException", "ResourceNotFound"):
                return False
            raise
        return True
