"""What every handler shares: the context it runs in, the handler shape, conversions.

A handler turns one pulumi_aws resource (inputs as pulumi_aws sends them, camelCase) into
boto3 calls against the local target, and returns the outputs a dependant reads.

Example::

    @handler
    class Topic(Handler):
        token = TOPIC
        name_key = "name"
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from modelops.graph.resource_types import type_facts
from modelops.local.server import Clients

#: every handler, by pulumi_aws type token
HANDLERS: dict[str, "Handler"] = {}


@dataclass
class Context:
    """boto3 clients of the target, region and account (from the target's STS)."""

    clients: Clients
    region: str
    #: ``destroy --empty-buckets``: delete objects ModelOps did not put in its buckets
    #: (data capture, files users uploaded) instead of stopping at a non-empty bucket
    empty_buckets: bool = False
    #: bucket -> key prefixes its objects go under as the output of a resource the state
    #: declares (an endpoint configuration's data capture ``destinationS3Uri``, a monitor
    #: job pipeline's results and statistics): deleted with the bucket (set by
    #: :meth:`MotoBackend.delete_all`)
    output_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _account: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        return self.clients.client(service)

    @property
    def account(self) -> str:
        with self._lock:
            if self._account is None:
                self._account = self.client("sts").get_caller_identity()["Account"]
            return self._account


class Handler:
    """Create / update / delete one resource type. Subclasses set the class attributes.

    ``replace_keys``: inputs whose change needs a new resource (``None``: any change does),
    from the type table (``modelops/data/resource_types.json``), the one diff reads.
    ``name_key``: the input holding the physical name (autonamed like Pulumi when absent).
    """

    token: ClassVar[str] = ""
    name_key: ClassVar[str | None] = None
    #: a note shown with this resource's actions (e.g. what moto cannot do)
    note: ClassVar[str] = ""

    def physical_name(self, name: str, inputs: dict[str, Any], previous: str | None) -> str | None:
        if self.name_key is None:
            return None
        given = inputs.get(self.name_key)
        if given:
            return str(given)
        prefix = inputs.get(f"{self.name_key}Prefix")
        return previous or f"{prefix or name + '-'}{secrets.token_hex(4)}"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        """Apply changed inputs in place; only called when no ``replace_keys`` changed."""
        raise NotImplementedError

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        raise NotImplementedError

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        """Whether the resource can be described back from the target."""
        raise NotImplementedError

    def expected_id(self, ctx: Context, physical: str, inputs: dict[str, Any]) -> str:
        """The id ``create(ctx, physical, inputs)`` returns, known before the call."""
        return physical

    def recover(self, ctx: Context, physical: str, inputs: dict[str, Any], recorded: set[str]) -> bool:
        """Remove what an interrupted ``create`` of ``physical`` may have left; True if it found any.

        ``recorded``: ids of this type the state holds (never touched). Named resources are
        deleted by name, so the repeated create does not fail with "already exists". Types
        without a name are idempotent puts (bucket settings, alarms' targets, subscriptions):
        the repeated create converges on the same thing, nothing to remove.
        """
        if self.name_key is None:
            return False
        id_ = self.expected_id(ctx, physical, inputs)
        if id_ in recorded:
            return False
        outputs = {**inputs, self.name_key: physical}
        try:
            if not self.exists(ctx, id_, outputs):
                return False
            self.delete(ctx, id_, outputs)
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        """AWS name or ARN shown to the user."""
        return str(outputs.get("arn") or id_)

    @property
    def replace_keys(self) -> frozenset[str] | None:
        facts = type_facts(self.token)
        return None if facts is None or facts.replace_all else facts.replace

    @property
    def updatable(self) -> bool:
        return type(self).update is not Handler.update


def handler(cls: type[Handler]) -> type[Handler]:
    HANDLERS[cls.token] = cls()
    return cls


def plain(value: Any) -> Any:
    """Numbers as pulumi sends them (all floats) back to ints where integral, for boto3's model."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


_RENAMES = {
    "id": "ID",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "sseAlgorithm": "SSEAlgorithm",
    "memorySizeInMb": "MemorySizeInMB",
    "serDeInfo": "SerdeInfo",
    "destinationS3Uri": "DestinationS3Uri",
    "roleArn": "RoleARN",
}


def pascal(value: Any, renames: dict[str, str] | None = None) -> Any:
    """camelCase keys (pulumi_aws) to PascalCase (the AWS API), recursively; ints made int."""
    names = {**_RENAMES, **(renames or {})}
    if isinstance(value, dict):
        return {
            names.get(k, k[:1].upper() + k[1:]): pascal(v, renames)
            for k, v in value.items()
            if v is not None and not k.startswith("__")
        }
    if isinstance(value, list):
        return [pascal(v, renames) for v in value]
    return plain(value)


def drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: plain(v) for k, v in kwargs.items() if v is not None and v != [] and v != {}}


def tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in sorted((tags or {}).items())]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: Exception) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (
        status == 404
        or bool(re.search(r"NotFound|NoSuch|NonExistent|DoesNotExist", code))
        or (code == "ValidationException" and "not" in str(exc).lower() and "exist" in str(exc).lower())
        or (code == "ValidationException" and "Could not find" in str(exc))
    )


_CONFLICT = re.compile(r"AlreadyExists|AlreadyOwnedByYou|EntityAlreadyExists|ResourceInUse|Conflict")


def is_conflict(exc: Exception) -> bool:
    """AWS refused a create because the name is taken: the call made nothing."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    return bool(_CONFLICT.search(code)) or (
        code == "ValidationException" and "already exist" in str(exc).lower()
    )


def validate_request(ctx: Context, service: str, operation: str, params: dict[str, Any]) -> None:
    """Check ``params`` against the AWS API model of ``operation`` without sending it."""
    client = ctx.client(service)
    model = client.meta.service_model.operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        raise ValueError(f"{service}.{operation}: {report.generate_report()}")
