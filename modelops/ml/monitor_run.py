"""``modelops monitor run``: a model's monitor job, as deployed, run locally or started in AWS.

The pipeline is read back from the target (``DescribePipeline``), never rebuilt from the
spec: what runs is what ``up`` (or ``pulumi up``) deployed. Against the emulator its steps
run here (:mod:`modelops.local.processing`), reading the emulator's S3 and putting the
job's metrics to its CloudWatch, where the alarms are evaluated; against AWS (``--aws``)
the pipeline is started and its execution ARN reported.

Example::

    runs = run_monitors(env, target, monitor="churn-drift")
    runs[0].results[0]["verdict"]     # 'alarm'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import requests
from botocore.exceptions import ClientError

from modelops.components import naming
from modelops.errors import UsageError
from modelops.local import processing
from modelops.local.alarms import evaluate_alarms
from modelops.local.server import REAL_AWS
from modelops.spec.resolved import Environment


@dataclass
class MonitorRun:
    """One model's job run: its pipeline, the steps, and each monitor's result."""

    model: str
    pipeline: str
    monitors: list[str]
    execution: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    #: True when the pipeline was started in AWS (its steps run there, results come later)
    started: bool = False
    #: the alarm state changes the emulator made when evaluating after the run
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "pipeline": self.pipeline, "monitors": self.monitors, "execution": self.execution,
                "started": self.started, "steps": self.steps, "results": self.results, "alarms": self.alarms}


def job_models(env: Environment, monitor: str | None) -> dict[str, list[str]]:
    """Model -> its job monitors: of ``monitor`` alone, or of every model (None)."""
    jobs: dict[str, list[str]] = {}
    for name in sorted(env.monitors):
        spec = env.monitors[name]
        if spec.model is not None and spec.is_job:
            jobs.setdefault(spec.model, []).append(name)
    if monitor is None:
        if not jobs:
            raise UsageError(f"{env.spec_file or 'the spec'} declares no job monitor for env {env.env} "
                             "(data_drift, data_quality, prediction_drift, model_quality)")
        return jobs
    spec = env.monitors.get(monitor)
    if spec is None or spec.model is None or not spec.is_job:
        known = ", ".join(m for ms in jobs.values() for m in ms) or "none"
        what = "is not declared" if spec is None else f"is a CloudWatch alarm on {spec.metric}, with no job"
        raise UsageError(f"monitor {monitor!r} {what} in {env.spec_file or 'the spec'} for env {env.env}; "
                         f"job monitors: {known}")
    return {spec.model: jobs[spec.model]}


def _definition(sm: Any, pipeline: str, env: Environment) -> dict[str, Any]:
    try:
        described = sm.describe_pipeline(PipelineName=pipeline)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ResourceNotFound", "ValidationException") or "not" in str(exc).lower():
            raise UsageError(f"pipeline {pipeline} is not deployed on the target; run `modelops up --env {env.env}` first") from None
        raise
    return json.loads(described["PipelineDefinition"])


def run_monitors(env: Environment, target: Any, *, monitor: str | None = None,
                 timeout: float = processing.DEFAULT_TIMEOUT) -> list[MonitorRun]:
    """Run the jobs of ``monitor`` (its model's job) or of every model (None) on ``target``."""
    runs = []
    clients = target.clients(env.region)
    sm = clients.client("sagemaker")
    for model, monitors in job_models(env, monitor).items():
        pipeline = naming.pipeline_name(env.project, env.env, model)
        run = MonitorRun(model, pipeline, monitors)
        if target.url == REAL_AWS:
            try:
                started = sm.start_pipeline_execution(PipelineName=pipeline,
                                                      PipelineExecutionDescription="started by modelops monitor run")
            except ClientError as exc:
                raise UsageError(f"pipeline {pipeline}: {exc}") from None
            run.execution, run.started = started["PipelineExecutionArn"], True
            runs.append(run)
            continue
        definition = _definition(sm, pipeline, env)
        done = processing.run_definition(definition, target, env.region, timeout=timeout)
        run.execution = done.execution_id
        run.steps = [s.to_dict() for s in done.steps]
        summary = processing.last_json(done.steps[-1].stdout[0]) if done.steps and done.steps[-1].stdout else None
        run.results = list((summary or {}).get("results") or [])
        runs.append(run)
    if runs and target.url != REAL_AWS:
        # CloudWatch evaluates every alarm each minute, data or not; the emulator only after
        # PutMetricData. A run that published nothing (no traffic, no labels) must still
        # move its monitors' alarms by their missing-data rule, as the next evaluation in
        # AWS would (the job's alarms only: the others are no business of this command).
        for run in runs:
            names = [naming.alarm_name(env.project, env.env, m) for m in run.monitors]
            try:
                run.alarms = evaluate_alarms(target.url, verify=target.verify, alarms=names)
            except requests.RequestException:
                run.alarms = []  # a plain moto server at --endpoint-url evaluates no alarm
    return runs
