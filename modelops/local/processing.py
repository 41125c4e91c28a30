"""SageMaker pipeline processing steps, run locally against the emulator.

moto records a pipeline (``CreatePipeline``) and its executions but never runs them. This
module runs a pipeline definition (format 2020-12-01, as :func:`describe_pipeline` returns
it) as SageMaker Processing would, one subprocess per processing instance:

* each instance gets a directory standing for its container's ``/opt/ml``, with
  ``config/resourceconfig.json`` (its host, ``algo-<i>``, and the job's hosts), as
  SageMaker gives it: every ``ProcessingInput`` is downloaded from S3 under its ``LocalPath`` (keys below the
  ``S3Uri`` prefix keep their relative path); ``ShardedByS3Key`` gives key *j* (in key
  order) to instance *j* mod ``InstanceCount``, ``FullyReplicated`` gives every key to
  every instance;
* the container's entrypoint and arguments run with ``/opt/ml`` rewritten to
  that directory and ``python3`` to this interpreter (the job depends only on numpy,
  scipy and boto3, which the processing image and ModelOps both have), with the step's
  ``Environment`` plus the emulator's endpoint, CA bundle and test credentials;
* once every instance exited 0, each ``ProcessingOutput``'s ``LocalPath`` is uploaded to
  its ``S3Uri``; a later step reads it through ``{"Get": "Steps.<step>..."}``.

Expressions: ``{"Get": "Execution.PipelineExecutionId"}``, ``{"Std:Join": ...}`` and the
``S3Output.S3Uri`` of an earlier step's output. Not done: pipeline parameters, conditions,
other step types, instance types and their limits, network isolation (a local process can
reach the emulator whatever the step says), ``MaxRuntimeInSeconds`` beyond the timeout
given here.

Example::

    run = run_definition(json.loads(described["PipelineDefinition"]), target, "eu-west-1")
    run.steps[0].instances     # 4
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.errors import ModelOpsError, UsageError

OPT_ML = "/opt/ml"
PROCESSING = "/opt/ml/processing"
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
#: what one local processing instance may run at most (seconds)
DEFAULT_TIMEOUT = 900
_OUTPUT_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$")


class StepFailed(ModelOpsError):
    """A processing instance exited non-zero (its last stderr line is in the message)."""

    code = "E-STEP-FAILED"
    exit_code = 1


@dataclass
class StepRun:
    name: str
    instances: int
    #: input name -> objects each instance received
    objects: dict[str, list[int]] = field(default_factory=dict)
    #: each instance's stdout (the job prints one JSON line)
    stdout: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "instances": self.instances, "objects": self.objects, "outputs": self.outputs,
                # what each instance printed last (the job: one JSON line of what it read and wrote)
                "printed": [last_json(out) for out in self.stdout]}


@dataclass
class PipelineRun:
    execution_id: str
    steps: list[StepRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"execution_id": self.execution_id, "steps": [s.to_dict() for s in self.steps]}


def _split(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise UsageError(f"pipeline definition: {uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def resolve(value: Any, execution_id: str, outputs: dict[tuple[str, str], str]) -> Any:
    """``value`` with the definition's expressions evaluated."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            ref = value["Get"]
            if ref == "Execution.PipelineExecutionId":
                return execution_id
            match = _OUTPUT_REF.match(str(ref))
            if match and (match.group(1), match.group(2)) in outputs:
                return outputs[(match.group(1), match.group(2))]
            raise UsageError(f"pipeline definition: cannot evaluate {{'Get': {ref!r}}} locally")
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join.get("On", "")).join(str(resolve(v, execution_id, outputs)) for v in join.get("Values", []))
        return {k: resolve(v, execution_id, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, execution_id, outputs) for v in value]
    return value


def _order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps, each after those it depends on."""
    done: list[dict[str, Any]] = []
    names: set[str] = set()
    pending = list(steps)
    while pending:
        ready = [s for s in pending if set(s.get("DependsOn") or []) <= names]
        if not ready:
            raise UsageError(f"pipeline definition: steps {', '.join(s['Name'] for s in pending)} depend on each other")
        for s in ready:
            done.append(s)
            names.add(s["Name"])
            pending.remove(s)
    return done


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return sorted(keys)


def _local(root: Path, container_path: str) -> Path:
    """Where an input or output path of the container is, under the instance's ``/opt/ml``."""
    if not container_path.startswith(PROCESSING):
        raise UsageError(f"pipeline definition: {container_path!r} is not under {PROCESSING}")
    return root / container_path[len(OPT_ML):].lstrip("/")


def _rewrite(text: str, root: Path) -> str:
    """An argument naming a container path (under ``/opt/ml``), as the instance's local path."""
    return str(root) + text[len(OPT_ML):] if text == OPT_ML or text.startswith(OPT_ML + "/") else text


def _resource_config(root: Path, index: int, count: int) -> None:
    """``/opt/ml/config/resourceconfig.json``, as SageMaker gives every processing instance."""
    hosts = [f"algo-{i + 1}" for i in range(count)]
    path = root / RESOURCE_CONFIG[len(OPT_ML):].lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"current_host": hosts[index], "hosts": hosts}), encoding="utf-8")


def _download(s3: Any, spec: dict[str, Any], roots: list[Path]) -> list[int]:
    s3_input = spec["S3Input"]
    bucket, prefix = _split(s3_input["S3Uri"])
    keys = _keys(s3, bucket, prefix)
    if not keys:
        # as SageMaker: an input prefix without objects fails the job
        raise StepFailed(f"input {spec['InputName']}: no object under s3://{bucket}/{prefix}")
    sharded = s3_input.get("S3DataDistributionType") == "ShardedByS3Key"
    counts = [0] * len(roots)
    for index, key in enumerate(keys):
        relative = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
        targets = [index % len(roots)] if sharded else range(len(roots))
        for i in targets:
            path = _local(roots[i], s3_input["LocalPath"]) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(path))
            counts[i] += 1
    return counts


def _environment(step_env: dict[str, str], target: Any, region: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1",
           **{k: str(v) for k, v in (step_env or {}).items()},
           "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    if target.url != "aws":
        env.update({"AWS_ENDPOINT_URL": target.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        if isinstance(target.verify, str):
            env["AWS_CA_BUNDLE"] = target.verify
    return env


def _run_step(step: dict[str, Any], s3: Any, target: Any, region: str, workdir: Path, timeout: float) -> StepRun:
    args = step["Arguments"]
    count = int(args["ProcessingResources"]["ClusterConfig"]["InstanceCount"])
    roots = [workdir / step["Name"] / f"algo-{i + 1}" for i in range(count)]
    run = StepRun(step["Name"], count)
    for spec in args.get("ProcessingInputs") or []:
        run.objects[spec["InputName"]] = _download(s3, spec, roots)
    app = args["AppSpecification"]
    processes = []
    for index, root in enumerate(roots):
        _resource_config(root, index, count)
        for out in (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            _local(root, out["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        command = [_rewrite(c, root) for c in list(app.get("ContainerEntrypoint") or []) + list(app.get("ContainerArguments") or [])]
        if command and command[0] in ("python3", "python"):
            command[0] = sys.executable
        processes.append(subprocess.Popen(command, cwd=root, env=_environment(args.get("Environment") or {}, target, region),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    failures = []
    for i, process in enumerate(processes):
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            failures.append(f"instance algo-{i + 1} ran over {timeout:g} s")
            continue
        run.stdout.append(out)
        if process.returncode != 0:
            last = (err.strip().splitlines() or [f"exit {process.returncode}"])[-1]
            failures.append(f"instance algo-{i + 1}: {last}")
    if failures:
        raise StepFailed(f"step {step['Name']} failed: {'; '.join(failures)}")
    for out in (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        bucket, prefix = _split(out["S3Output"]["S3Uri"])
        for root in roots:
            local = _local(root, out["S3Output"]["LocalPath"])
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}")
        run.outputs[out["OutputName"]] = out["S3Output"]["S3Uri"]
    return run


def run_definition(definition: dict[str, Any], target: Any, region: str, *, execution_id: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> PipelineRun:
    """Run every processing step of ``definition`` against ``target`` (a :class:`~modelops.local.server.Target`)."""
    if definition.get("Version") != "2020-12-01":
        raise UsageError(f"pipeline definition version {definition.get('Version')!r}: only 2020-12-01 runs locally")
    execution_id = execution_id or f"local-{uuid.uuid4().hex[:12]}"
    s3 = target.clients(region).client("s3")
    run = PipelineRun(execution_id)
    outputs: dict[tuple[str, str], str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="modelops-processing-"))
    try:
        for raw in _order(list(definition.get("Steps") or [])):
            if raw.get("Type") != "Processing":
                raise UsageError(f"pipeline step {raw.get('Name')!r} is a {raw.get('Type')} step: only Processing runs locally")
            step = resolve(raw, execution_id, outputs)
            done = _run_step(step, s3, target, region, workdir, timeout)
            for name, uri in done.outputs.items():
                outputs[(step["Name"], name)] = uri
            run.steps.append(done)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return run


def last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object line a step printed, if any."""
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
