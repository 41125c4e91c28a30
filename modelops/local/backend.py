"""The local AWS backend: every registered resource applied to the target through boto3.

``create(reg)`` is called by the mock monitor (from its thread pool) for every custom
resource the program registers. It compares the registration with the recorded state:

* not recorded -> **create**;
* recorded with the same inputs -> **unchanged**: the stored id and outputs, no AWS call;
* changed, and the handler can update those inputs in place -> **update**;
* otherwise -> **replace**: create the new one first and delete the old one after the
  program (create-before-delete), or delete first when the physical name is reused or the
  resource asks for ``deleteBeforeReplace``.

The IDs, ARNs and names the target returns are the outputs, so dependants receive real
values through Pulumi's own output machinery. After the program, :meth:`MotoBackend.finish`
deletes what the state holds and the program no longer registers, dependants first.

Example::

    backend = MotoBackend(Context(target.clients(env.region), env.region), state)
    run(program_for(env), backend, project=env.project, stack=env.env)
    backend.finish(registered_urns)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from modelops.components import naming
from modelops.graph.resource_types import CALLER_IDENTITY, ENDPOINT, GET_ALIAS, GET_KEY, GET_OBJECTS, PIPELINE
from modelops.errors import ApplyError
from modelops.local.handlers import HANDLERS, Context, Handler
from modelops.local.handlers.base import error_code, is_conflict, is_not_found
from modelops.local.state import Intent, ResourceState, StateStore, deletion_order, fingerprint, to_plain
from modelops.graph.render import unwrap_secrets
from modelops.graph.runtime import Registration
from modelops.secrets import mask


#: (operation, resource type, resource name) -> an exception to raise instead of calling AWS.
#: Tests use it to inject an AWS error at the k-th operation.
FailHook = Callable[[str, str, str], Exception | None]


@dataclass
class Action:
    """What happened to one resource."""

    urn: str
    type: str
    name: str
    action: str  # created | updated | replaced | unchanged | deleted
    id: str = ""
    label: str = ""
    note: str = ""
    entity: str = ""
    seconds: float = 0.0


class _Aborted(Exception):
    """A registration that arrived after another resource failed: not applied."""

    reported = True


class _ReportedElsewhere(logging.Filter):
    """Drops asyncio's "exception was never retrieved" records for failures we report.

    After a resource fails, the SDK abandons the tasks of every resource waiting on it;
    asyncio logs each, with a traceback, when it is collected. The failure is reported
    once, as an ApplyError naming the resource; those records would only bury it.
    """

    #: set once a failure was reported in this process: the SDK's pending tasks then die unfinished
    failed = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.failed and str(record.msg).startswith("Task was destroyed but it is pending"):
            return False
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            error = getattr(record, "exception", None)
        if error is None and isinstance(record.args, dict):
            error = record.args.get("exception")
        return not (error is not None and getattr(error, "reported", False))


_FILTER = _ReportedElsewhere()
logging.getLogger("asyncio").addFilter(_FILTER)


def _mark_reported(error: BaseException) -> None:
    _ReportedElsewhere.failed = True
    try:
        error.reported = True  # type: ignore[attr-defined]
    except AttributeError:  # an exception type with __slots__: its record stays visible
        pass


def handler_for(token: str) -> Handler:
    """The handler of a pulumi_aws type token; a loud error when there is none."""
    try:
        return HANDLERS[token]
    except KeyError:
        raise ApplyError(
            f"no local handler for resource type {token}: the local target cannot apply it "
            f"(add one in modelops/local/handlers/)"
        ) from None


def describe_error(exc: BaseException) -> str:
    """The AWS error in one line; https URLs (subscription endpoints are secrets) masked."""
    return mask(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 500 and not error_code(exc).isalpha():
            return (f"the target failed on {exc.operation_name} (HTTP 500; a plain moto server does not implement "
                    "every operation, e.g. DeleteModelPackageGroup: the embedded emulator does)")
        return f"{error_code(exc) or 'ClientError'}: {exc.response.get('Error', {}).get('Message', exc)}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Failure:
    type: str
    name: str
    operation: str
    error: BaseException


@dataclass
class MotoBackend:
    """Applies registrations to the local target, recording each success in ``state``."""

    ctx: Context
    state: StateStore
    fail_at: FailHook | None = None
    on_event: Callable[[str, Action], None] | None = None
    actions: dict[str, Action] = field(default_factory=dict)
    failure: Failure | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: creates running now: the SDK reports the first failure while others are still in flight
    _busy: int = field(default=0, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, repr=False)

    # --- the Backend protocol ------------------------------------------------------------------

    def call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == CALLER_IDENTITY:
            identity = self.ctx.client("sts").get_caller_identity()
            return {"accountId": identity["Account"], "arn": identity["Arn"], "userId": identity["UserId"],
                    "id": identity["Account"]}
        if token == GET_OBJECTS:  # what the provider's data source asks S3: ListObjectsV2
            bucket, prefix = str(args["bucket"]), str(args.get("prefix") or "")
            try:
                listed = self.ctx.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix,
                                                               MaxKeys=int(args.get("maxKeys") or 1000))
            except ClientError as exc:
                raise ApplyError(f"reading the objects of s3://{bucket}/{prefix}: {describe_error(exc)}") from None
            return {"bucket": bucket, "prefix": prefix, "keys": [o["Key"] for o in listed.get("Contents", [])],
                    "commonPrefixes": [], "owners": [], "id": bucket}
        if token == GET_ALIAS:  # DescribeKey of the alias, as the provider does
            name = str(args["name"])
            try:
                key = self.ctx.client("kms").describe_key(KeyId=name)["KeyMetadata"]
            except ClientError as exc:
                raise ApplyError(f"reading the KMS alias {name}: {describe_error(exc)}; is the registry stack up?") from None
            return {"name": name, "arn": key["Arn"].rsplit(":", 1)[0] + ":" + name, "targetKeyId": key["KeyId"],
                    "targetKeyArn": key["Arn"], "id": name}
        if token == GET_KEY:  # DescribeKey, as the provider does: the registry's key in another account
            key_id = str(args["keyId"])
            try:
                key = self.ctx.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]
            except ClientError as exc:
                raise ApplyError(f"reading the KMS key {key_id}: {describe_error(exc)}; is the registry stack up, "
                                 "and does its key policy grant this environment's deploy role?") from None
            return {"keyId": key_id, "arn": key["Arn"], "id": key["KeyId"]}
        raise ApplyError(f"no local handler for invoke {token}")

    def create(self, reg: Registration) -> tuple[str, dict[str, Any]]:
        with self._idle:
            self._busy += 1
        try:
            return self._apply(reg)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 600.0) -> None:
        """Wait for creates still in flight (their records must land before the state closes)."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def _apply(self, reg: Registration) -> tuple[str, dict[str, Any]]:
        # Secret inputs (https subscription endpoints) arrive wrapped; AWS needs the value.
        reg = dataclasses.replace(reg, inputs=unwrap_secrets(reg.inputs))
        try:
            handler = handler_for(reg.type)
        except ApplyError as exc:
            with self._lock:
                if self.failure is None:
                    self.failure = Failure(reg.type, reg.name, "create", exc)
            _mark_reported(exc)
            raise
        if self.failure is not None:
            raise _Aborted(f"{reg.type} {reg.name}: not applied, an earlier resource failed")
        previous = self.state.get(reg.urn)
        inputs = to_plain(reg.inputs)
        stored_inputs = {k: v for k, v in inputs.items()}
        if previous is not None and previous.type == reg.type and fingerprint(previous.inputs) == fingerprint(inputs):
            if (previous.protect, previous.retain_on_delete) != (reg.protect, reg.retain_on_delete):
                previous.protect, previous.retain_on_delete = reg.protect, reg.retain_on_delete
                self.state.put(previous)
            self._record(reg, "unchanged", previous.id, previous.outputs, handler)
            return previous.id, self._pulumi_outputs(reg, previous.outputs)
        started = time.monotonic()
        operation = "create"
        try:
            if previous is None:
                id_, outputs = self._create(handler, reg, plain_inputs=inputs)
                action = "created"
            else:
                operation, id_, outputs = self._change(handler, reg, previous, inputs)
                action = {"update": "updated", "replace": "replaced"}[operation]
        except _Aborted:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its resource
            with self._lock:
                if self.failure is None:
                    self.failure = Failure(reg.type, reg.name, operation, exc)
            _mark_reported(exc)
            raise
        self.state.put(
            ResourceState(
                urn=reg.urn, type=reg.type, name=reg.name, id=id_, inputs=stored_inputs, outputs=outputs,
                parent=reg.parent, dependencies=list(reg.dependencies), protect=reg.protect,
                retain_on_delete=reg.retain_on_delete,
            )
        )
        self._record(reg, action, id_, outputs, handler, seconds=time.monotonic() - started)
        return id_, self._pulumi_outputs(reg, outputs)

    # --- operations ----------------------------------------------------------------------------

    def _inject(self, operation: str, type_: str, name: str) -> None:
        if self.fail_at is not None:
            error = self.fail_at(operation, type_, name)
            if error is not None:
                raise error

    def _create(self, handler: Handler, reg: Registration, previous_name: str | None = None,
                plain_inputs: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self._announce("creating", reg)
        self._inject("create", reg.type, reg.name)
        physical = handler.physical_name(reg.name, reg.inputs, previous_name) or reg.name
        # the inputs as JSON data once (file assets are hashed by to_plain): read-only below
        plain = to_plain(reg.inputs) if plain_inputs is None else plain_inputs
        # journaled first: if the process dies after AWS created it but before the record,
        # the next run removes what this create left (recover_interrupted)
        self.state.begin_create(Intent(reg.urn, reg.type, reg.name, physical, plain))
        try:
            id_, computed = handler.create(self.ctx, physical, reg.inputs)
        except ClientError as exc:
            if is_conflict(exc):  # refused as a whole: nothing of ours to recover, maybe someone else's
                self.state.end_create(reg.urn)
            raise
        return id_, {**_without_assets(plain), **computed}

    def _change(
        self, handler: Handler, reg: Registration, previous: ResourceState, inputs: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        changed = {k for k in {*inputs, *previous.inputs} if to_plain(inputs.get(k)) != previous.inputs.get(k)}
        replace = (
            not handler.updatable
            or handler.replace_keys is None
            or bool(changed & handler.replace_keys)
            or previous.type != reg.type
        )
        if not replace:
            self._announce("updating", reg)
            self._inject("update", reg.type, reg.name)
            computed = handler.update(self.ctx, previous.id, previous.outputs, reg.inputs)
            return "update", previous.id, {**_without_assets(inputs), **computed}
        if previous.protect:
            raise ApplyError(
                f"{reg.type} {reg.name} is protected and its change ({', '.join(sorted(changed))}) needs a "
                "replacement; remove `protect` from the environment's overlay first"
            )
        old_name = previous.outputs.get(handler.name_key) if handler.name_key else None
        new_name = handler.physical_name(reg.name, reg.inputs, None) if handler.name_key else None
        reuses_name = handler.name_key is not None and reg.inputs.get(handler.name_key) and new_name == old_name
        if reuses_name or reg.delete_before_replace:
            self._announce("replacing", reg)
            self._delete_one(handler, previous)
            self.state.remove(previous.urn)
            id_, outputs = self._create(handler, reg)
            return "replace", id_, outputs
        id_, outputs = self._create(handler, reg)
        # the old one goes after the program, once its dependants point at the new one
        self.state.add_pending(previous)
        return "replace", id_, outputs

    def _delete_one(self, handler: Handler, resource: ResourceState) -> None:
        self._inject("delete", resource.type, resource.name)
        try:
            handler.delete(self.ctx, resource.id, resource.outputs)
        except (ClientError, BotoCoreError) as exc:
            if not is_not_found(exc):  # already gone is what we wanted
                raise

    # --- before the program --------------------------------------------------------------------

    def recover_interrupted(self) -> list[str]:
        """Undo the creates a killed run started but never recorded, so the program starts clean.

        Returns the physical names of what was found and removed.
        """
        removed: list[str] = []
        for intent in self.state.intents_snapshot():
            handler = handler_for(intent.type)
            recorded = {r.id for r in [*self.state.snapshot().values(), *self.state.pending_snapshot()]
                        if r.type == intent.type}
            try:
                if handler.recover(self.ctx, intent.physical, intent.inputs, recorded):
                    removed.append(intent.physical)
            except Exception as exc:
                self.failure = Failure(intent.type, intent.name, "recover (interrupted create of)", exc)
                raise
            self.state.end_create(intent.urn)
        return removed

    # --- after the program ---------------------------------------------------------------------

    def finish(self, registered: set[str]) -> None:
        """Delete what the state holds but the program did not register, and replaced originals."""
        doomed = {k: r for k, r in self.state.snapshot().items() if r.urn not in registered}
        protected = sorted(r.name for r in doomed.values() if r.protect)
        if protected:
            raise ApplyError(
                f"the spec no longer declares protected resources: {', '.join(protected)}; "
                "remove `protect` from the environment's overlay and run `modelops up` before removing them"
            )
        pending = {f"pending:{i}": r for i, r in enumerate(self.state.pending_snapshot())}
        self.delete_all({**doomed, **pending})

    def delete_all(self, resources: dict[str, ResourceState]) -> None:
        """Delete ``resources`` dependants first, each wave in parallel; stops at the first failure."""
        if not resources:
            return
        # read before the waves: the endpoint configurations and pipelines go before their buckets
        known = [*resources.values(), *self.state.snapshot().values()]
        self.ctx.output_prefixes = merge_prefixes(capture_prefixes(known), job_output_prefixes(known))
        waves = deletion_order(resources)
        with ThreadPoolExecutor(max_workers=8) as pool:
            for wave in waves:
                futures = [(key, pool.submit(self._delete_recorded, key, resources[key])) for key in wave]
                errors = []
                for key, future in futures:
                    try:
                        future.result()
                    except Exception as exc:  # noqa: BLE001 - reported with its resource
                        errors.append((resources[key], exc))
                if errors:
                    res, exc = errors[0]
                    self.failure = Failure(res.type, res.name, "delete", exc)
                    raise exc

    def _delete_recorded(self, key: str, resource: ResourceState) -> None:
        handler = handler_for(resource.type)
        started = time.monotonic()
        self._announce("deleting", resource)
        if not resource.retain_on_delete:
            self._delete_one(handler, resource)
        if key.startswith("pending:"):
            self.state.remove_pending(resource)
        else:
            self.state.remove(resource.urn)
        action = Action(
            urn=resource.urn, type=resource.type, name=resource.name,
            action="retained" if resource.retain_on_delete else "deleted", id=resource.id,
            label=handler.label(resource.id, resource.outputs), entity=resource.entity,
            seconds=time.monotonic() - started,
        )
        with self._lock:
            # a replaced resource keeps its "replaced" entry; its old half is gone now
            if resource.urn not in self.actions:
                self.actions[resource.urn] = action
        if self.on_event:
            self.on_event("done", action)

    # --- bookkeeping ---------------------------------------------------------------------------

    def _pulumi_outputs(self, reg: Registration, outputs: dict[str, Any]) -> dict[str, Any]:
        # Pulumi's state is inputs plus computed outputs; assets stay as the program gave them.
        return {**{k: v for k, v in reg.inputs.items()}, **outputs}

    def _announce(self, verb: str, reg: Registration | ResourceState) -> None:
        if self.on_event:
            self.on_event(verb, Action(urn=reg.urn, type=reg.type, name=reg.name, action=verb))

    def _record(self, reg: Registration, action: str, id_: str, outputs: dict[str, Any], handler: Handler,
                seconds: float = 0.0) -> None:
        note = handler.note if action in ("updated", "replaced", "created") and handler.note else ""
        if reg.type == ENDPOINT and action != "updated":
            note = ""
        entry = Action(urn=reg.urn, type=reg.type, name=reg.name, action=action, id=id_,
                       label=handler.label(id_, outputs), note=note, seconds=seconds)
        with self._lock:
            self.actions[reg.urn] = entry
        if self.on_event:
            self.on_event("done", entry)


ENDPOINT_CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def capture_prefixes(resources: Iterable[ResourceState]) -> dict[str, tuple[str, ...]]:
    """bucket -> the key prefixes the data capture of these endpoint configurations writes to.

    SageMaker writes ``<destinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/...`` (and
    ``modelops serve --capture-to-env`` writes the same locally): the prefix is the URI's
    path, ending in ``/`` so that ``capture/churn`` never covers ``capture/churn-v2``.
    """
    found: dict[str, set[str]] = {}
    for resource in resources:
        if resource.type != ENDPOINT_CONFIGURATION:
            continue
        uri = (resource.outputs.get("dataCaptureConfig") or {}).get("destinationS3Uri")
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            continue
        bucket, _, path = uri[len("s3://"):].partition("/")
        if bucket and path.strip("/"):
            found.setdefault(bucket, set()).add(path.strip("/") + "/")
    return {bucket: tuple(sorted(paths)) for bucket, paths in found.items()}


def _s3_prefix(uri: Any) -> tuple[str, str] | None:
    """(bucket, key prefix ending in ``/``) of an ``s3://`` URI, or of the first part of a
    pipeline's ``Std:Join`` (the stats output: the base URI, then the execution id)."""
    if isinstance(uri, dict) and "Std:Join" in uri:
        values = uri["Std:Join"].get("Values") or []
        uri = values[0] if values else None
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket, _, path = uri[len("s3://"):].partition("/")
    return (bucket, path.strip("/") + "/") if bucket and path.strip("/") else None


def job_output_prefixes(resources: Iterable[ResourceState]) -> dict[str, tuple[str, ...]]:
    """bucket -> the key prefixes the monitor jobs of these pipelines write to.

    Read from each pipeline's definition, as deployed: every processing output's S3 URI (the
    shard statistics, ``monitoring/_stats/<model>/``) and, for a step given ``--bucket``
    (the job's merge), :data:`naming.RESULTS_PREFIX` of that bucket, where the job writes
    ``monitoring/<monitor>/latest.json`` and its results.
    """
    found: dict[str, set[str]] = {}
    for resource in resources:
        if resource.type != PIPELINE:
            continue
        definition = resource.outputs.get("pipelineDefinition")
        try:
            steps = (json.loads(definition) if isinstance(definition, str) else definition or {}).get("Steps") or []
        except ValueError:
            continue
        for step in steps:
            args = step.get("Arguments") or {}
            for output in (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                where = _s3_prefix((output.get("S3Output") or {}).get("S3Uri"))
                if where:
                    found.setdefault(where[0], set()).add(where[1])
            argv = (args.get("AppSpecification") or {}).get("ContainerArguments") or []
            for flag, value in zip(argv, argv[1:]):
                if flag == "--bucket" and isinstance(value, str) and value:
                    found.setdefault(value, set()).add(naming.RESULTS_PREFIX)
    return {bucket: tuple(sorted(paths)) for bucket, paths in found.items()}


def merge_prefixes(*maps: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    merged: dict[str, set[str]] = {}
    for m in maps:
        for bucket, paths in m.items():
            merged.setdefault(bucket, set()).update(paths)
    return {bucket: tuple(sorted(paths)) for bucket, paths in merged.items()}


def _without_assets(inputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inputs.items() if not (isinstance(v, dict) and "__asset" in v)}
