"""EventBridge Scheduler schedules (they start the monitor jobs' pipelines)."""

from __future__ import annotations

from typing import Any

from modelops.graph.resource_types import SCHEDULE
from modelops.local.handlers.base import Context, Handler, drop_none, handler, pascal


def _params(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    target = pascal(inputs["target"], {"roleArn": "RoleArn", "arn": "Arn"})
    return drop_none(
        Name=name,
        GroupName=inputs.get("groupName"),
        Description=inputs.get("description"),
        ScheduleExpression=inputs["scheduleExpression"],
        ScheduleExpressionTimezone=inputs.get("scheduleExpressionTimezone"),
        FlexibleTimeWindow=pascal(inputs["flexibleTimeWindow"]),
        KmsKeyArn=inputs.get("kmsKeyArn"),
        State=inputs.get("state"),
        Target=target,
    )


@handler
class Schedule(Handler):
    token = SCHEDULE
    name_key = "name"
    note = "recorded, never fired by the emulator: `modelops monitor run` runs the job"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = ctx.client("scheduler").create_schedule(**_params(name, inputs))["ScheduleArn"]
        return name, {"name": name, "arn": arn}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        arn = ctx.client("scheduler").update_schedule(**_params(id_, inputs))["ScheduleArn"]
        return {"name": id_, "arn": arn}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("scheduler").delete_schedule(Name=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("scheduler").get_schedule(Name=id_)
        return True
