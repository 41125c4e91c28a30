"""Smoke checks of an applied environment: every recorded resource described back.

After ``up`` applies a stack, each resource it recorded is described from the target:
endpoints must be InService, alarms wired to topics that exist (described once per run),
schedules must start their pipeline, and each pipeline step's role must be granted what its
step reads.

Example::

    [c.name for c in smoke_checks(backend.ctx, state) if not c.ok]   # [] when all is well
"""

from __future__ import annotations

import fnmatch
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelops.graph.resource_types import ENDPOINT, METRIC_ALARM, PIPELINE, SCHEDULE, TOPIC
from modelops.local.backend import describe_error, handler_for
from modelops.local.handlers import Context
from modelops.local.state import StateStore

__all__ = ["Check", "smoke_checks"]


@dataclass
class Check:
    """One smoke check of the applied environment."""

    name: str
    ok: bool
    detail: str = ""


def smoke_checks(ctx: Context, state: StateStore, topics: set[str] | None = None) -> list[Check]:
    """Describe every recorded resource back; endpoints InService; alarms wired to live topics
    (the state's own, and ``topics``: another stack's, read through its outputs).

    One describe per resource: an endpoint's describe gives its status, an alarm's its
    actions (alarms described :data:`ALARMS_PER_CALL` at a time); what several resources
    point at (a topic, a pipeline, a step's role and its policies) is described once per
    run, not once per resource that names it.
    """
    resources = state.snapshot()
    topics = {r.id for r in resources.values() if r.type == TOPIC} | set(topics or ())
    ordered = sorted(resources.values(), key=lambda r: (r.type, r.name))
    seen = _Seen(ctx)
    alarms = [r.id for r in ordered if r.type == METRIC_ALARM]
    batches = [alarms[i:i + ALARMS_PER_CALL] for i in range(0, len(alarms), ALARMS_PER_CALL)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for batch, found in zip(batches, pool.map(lambda names: _described_alarms(ctx, names), batches)):
            for name in batch:  # a batch refused: each of its alarms reports the error
                seen.alarms[name] = found.get(name) if isinstance(found, dict) else found
        per_resource = list(pool.map(lambda r: _check_one(ctx, r, topics, seen), ordered))
    return [check for checks in per_resource for check in checks]


#: alarm names DescribeAlarms takes in one call (its limit)
ALARMS_PER_CALL = 100


def _described_alarms(ctx: Context, names: list[str]) -> dict[str, Any] | BaseException:
    """name -> described alarm (absent: not found) of ``names``, or the error that refused the call."""
    try:
        found: dict[str, Any] = {}
        request: dict[str, Any] = {"AlarmNames": names, "MaxRecords": ALARMS_PER_CALL}
        while True:  # the client's own calls (not a paginator), so a recording of them holds them
            page = ctx.client("cloudwatch").describe_alarms(**request)
            found.update({a["AlarmName"]: a for a in page.get("MetricAlarms", [])})
            if not page.get("NextToken"):
                return found
            request["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError) as exc:
        return exc


class _Seen:
    """What one smoke run described, each thing once (thread-safe): the first to ask describes
    it, the others wait for its answer (or its error)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._known: dict[tuple[str, str], Future[Any]] = {}
        self._lock = threading.Lock()
        #: alarm name -> described alarm (None: not found), or the error of its batch
        self.alarms: dict[str, Any] = {}

    def once(self, kind: str, key: str, describe: Any) -> Any:
        with self._lock:
            known = self._known.get((kind, key))
            first = known is None
            if known is None:
                known = self._known[(kind, key)] = Future()
        if first:
            try:
                known.set_result(describe())
            except BaseException as exc:  # noqa: BLE001 - every waiter sees it
                known.set_exception(exc)
        return known.result()

    def topic_exists(self, arn: str) -> bool:
        return self.once("topic", arn, lambda: _topic_exists(self._ctx, arn))

    def pipeline(self, name: str) -> dict[str, Any]:
        return self.once("pipeline", name, lambda: self._ctx.client("sagemaker").describe_pipeline(PipelineName=name))

    def role_documents(self, role: str) -> list[Any]:
        return self.once("role", role, lambda: _role_documents(self._ctx, role))


def _role_documents(ctx: Context, role: str) -> list[Any]:
    from urllib.parse import unquote

    iam = ctx.client("iam")
    documents = []
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        documents.append(unquote(document) if isinstance(document, str) else document)
    return documents


def _check_one(ctx: Context, resource: Any, topics: set[str], seen: _Seen) -> list[Check]:
    handler = handler_for(resource.type)
    label = handler.label(resource.id, resource.outputs)
    kind = resource.type.split(":")[1]
    described: dict[str, Any] | None = None
    try:
        if resource.type == ENDPOINT:
            described = ctx.client("sagemaker").describe_endpoint(EndpointName=resource.id)
            ok = True
        elif resource.type == METRIC_ALARM:
            described = seen.alarms[resource.id]  # described with its batch (smoke_checks)
            if isinstance(described, BaseException):
                raise described
            ok = described is not None
        elif resource.type == PIPELINE:
            described = seen.pipeline(resource.id)
            ok = True
        elif resource.type == SCHEDULE:
            described = ctx.client("scheduler").get_schedule(Name=resource.id)
            ok = True
        else:
            ok = handler.exists(ctx, resource.id, resource.outputs)
    except (ClientError, BotoCoreError) as exc:
        return [Check(f"{kind} {label} described", False, describe_error(exc))]
    checks = [Check(f"{kind} {label} described", ok, "" if ok else "not found")]
    if described is None:
        return checks
    if resource.type == ENDPOINT:
        status = described["EndpointStatus"]
        checks.append(Check(f"endpoint {resource.id} InService", status == "InService", status))
    if resource.type == METRIC_ALARM:
        actions = [a for a in described.get("AlarmActions", []) if a.startswith("arn:aws:sns:")]
        missing = [a for a in actions if a not in topics or not seen.topic_exists(a)]
        detail = ", ".join(a.rsplit(":", 1)[1] for a in actions) or "no notification channel"
        checks.append(Check(f"alarm {resource.id} wired to its topics", not missing,
                            f"missing: {', '.join(missing)}" if missing else detail))
    if resource.type == PIPELINE:
        checks += _pipeline_checks(ctx, resource.id, described, seen)
    if resource.type == SCHEDULE:
        target = (described.get("Target") or {}).get("Arn", "")
        try:
            seen.pipeline(target.rsplit("/", 1)[-1])
            there = ":pipeline/" in target
        except ClientError:
            there = False
        checks.append(Check(f"schedule {resource.id} starts pipeline {target.rsplit('/', 1)[-1]}", there,
                            described.get("ScheduleExpression", "") if there else f"no pipeline {target}"))
    return checks


def _granted(document: Any, action: str, arn: str, context: dict[str, str] | None = None) -> bool:
    """Whether an identity policy ``document`` allows ``action`` on ``arn`` (Allow statements, glob resources).

    moto enforces no IAM: the emulator's check of what a job role may read is this one.
    With ``context`` (condition key -> the request's value, e.g. ``{"s3:prefix": ...}``), a
    statement's ``StringLike`` / ``StringEquals`` conditions on those keys must hold too, and
    a statement with any other condition does not count; without it, conditions are not read."""
    doc = json.loads(document) if isinstance(document, str) else document
    statements = doc.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action") or []
        resources = st.get("Resource") or []
        actions = actions if isinstance(actions, list) else [actions]
        resources = resources if isinstance(resources, list) else [resources]
        if st.get("Effect") == "Allow" and action in actions and any(fnmatch.fnmatchcase(arn, r) for r in resources) \
                and (context is None or _conditions_hold(st.get("Condition") or {}, context)):
            return True
    return False


def _conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """Whether every ``StringLike`` / ``StringEquals`` condition holds for ``context``; any
    other operator, or a key the context lacks, counts as not holding (the check is strict)."""
    for operator, tests in condition.items():
        if operator not in ("StringLike", "StringEquals") or not isinstance(tests, dict):
            return False
        for key, patterns in tests.items():
            if key not in context:
                return False
            patterns = patterns if isinstance(patterns, list) else [patterns]
            value = context[key]
            if not any(fnmatch.fnmatchcase(value, p) if operator == "StringLike" else value == p for p in patterns):
                return False
    return True


def _pipeline_checks(ctx: Context, name: str, described: dict[str, Any], seen: _Seen) -> list[Check]:
    """Each processing step's role may read each of its S3 inputs, and each input holds an object."""
    definition = json.loads(described.get("PipelineDefinition") or "{}")
    s3 = ctx.client("s3")
    checks: list[Check] = []
    for step in definition.get("Steps") or []:
        args = step.get("Arguments") or {}
        role = str(args.get("RoleArn", "")).rsplit("/", 1)[-1]
        try:
            documents = seen.role_documents(role)
        except ClientError as exc:
            checks.append(Check(f"pipeline {name} step {step.get('Name')} role {role} described", False, describe_error(exc)))
            continue
        unreadable, empty = [], []
        for spec in args.get("ProcessingInputs") or []:
            uri = (spec.get("S3Input") or {}).get("S3Uri")
            if not isinstance(uri, str):
                continue  # an earlier step's output, known when the pipeline runs
            bucket, _, key = uri[5:].partition("/")
            probe = f"arn:aws:s3:::{bucket}/{key}" + ("x" if key.endswith("/") else "")
            if not any(_granted(d, "s3:GetObject", probe) for d in documents):
                unreadable.append(spec["InputName"])
            try:
                if not s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"):
                    empty.append(spec["InputName"])
            except ClientError as exc:  # a bucket another stack makes, not up yet
                empty.append(f"{spec['InputName']} ({describe_error(exc)})")
        checks.append(Check(f"pipeline {name} step {step.get('Name')}: role {role} may read its inputs", not unreadable,
                            f"not granted: {', '.join(unreadable)}" if unreadable else "s3:GetObject granted"))
        checks.append(Check(f"pipeline {name} step {step.get('Name')}: every input holds an object", not empty,
                            f"empty: {', '.join(empty)}" if empty else ""))
        capture = _capture_read(s3, args)
        if capture is not None:
            # the stats step lists and reads its window's capture itself (no input mounts it)
            bucket, prefix = capture
            # the lists must be allowed for the prefixes the job asks for (the s3:prefix
            # condition): the capture prefix (its variants), then a variant's hour partition
            asked = [{"s3:prefix": prefix}, {"s3:prefix": f"{prefix}primary/2026/01/01/00/"}]
            missing = [] if all(any(_granted(d, "s3:ListBucket", f"arn:aws:s3:::{bucket}", c) for d in documents)
                                for c in asked) else ["s3:ListBucket"]
            if not any(_granted(d, "s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}x") for d in documents):
                missing.append("s3:GetObject")
            checks.append(Check(f"pipeline {name} step {step.get('Name')}: role {role} may list and read "
                                f"s3://{bucket}/{prefix}", not missing,
                                f"not granted: {', '.join(missing)}" if missing else "s3:ListBucket, s3:GetObject granted"))
    return checks


def _capture_read(s3: Any, args: dict[str, Any]) -> tuple[str, str] | None:
    """(bucket, capture prefix) a step reads through S3 itself (``--bucket`` and its config's
    ``capture_prefix``), or None."""
    arguments = list((args.get("AppSpecification") or {}).get("ContainerArguments") or [])
    if "--bucket" not in arguments or not arguments or arguments[0] != "stats":
        return None
    bucket = arguments[arguments.index("--bucket") + 1]
    for spec in args.get("ProcessingInputs") or []:
        uri = (spec.get("S3Input") or {}).get("S3Uri")
        if spec.get("InputName") == "config" and isinstance(uri, str) and isinstance(bucket, str):
            config_bucket, _, key = uri[5:].partition("/")
            try:
                config = json.loads(s3.get_object(Bucket=config_bucket, Key=key)["Body"].read())
            except (ClientError, ValueError):
                return None  # the input checks above already say it cannot be read
            return bucket, str(config.get("capture_prefix") or "")
    return None


def _topic_exists(ctx: Context, arn: str) -> bool:
    try:
        ctx.client("sns").get_topic_attributes(TopicArn=arn)
        return True
    except ClientError:
        return False
