"""SageMaker Pipelines (the monitor jobs' pipelines)."""

from __future__ import annotations

import json
from typing import Any

from modelops.graph.resource_types import PIPELINE
from modelops.local.handlers.base import Context, Handler, drop_none, handler, tag_list


def _definition(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@handler
class Pipeline(Handler):
    token = PIPELINE
    name_key = "pipelineName"
    note = "recorded, never run by the emulator: `modelops monitor run` runs its steps"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = ctx.client("sagemaker").create_pipeline(**drop_none(
            PipelineName=name,
            PipelineDisplayName=inputs.get("pipelineDisplayName"),
            PipelineDefinition=_definition(inputs["pipelineDefinition"]),
            PipelineDescription=inputs.get("pipelineDescription"),
            RoleArn=inputs["roleArn"],
            Tags=tag_list(inputs.get("tags")),
            ClientRequestToken=f"modelops-{name}"[:128],
        ))["PipelineArn"]
        return name, {"pipelineName": name, "arn": arn}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        sm = ctx.client("sagemaker")
        arn = sm.update_pipeline(**drop_none(
            PipelineName=id_,
            PipelineDisplayName=inputs.get("pipelineDisplayName"),
            PipelineDefinition=_definition(inputs["pipelineDefinition"]),
            PipelineDescription=inputs.get("pipelineDescription"),
            RoleArn=inputs["roleArn"],
        ))["PipelineArn"]
        return {"pipelineName": id_, "arn": arn}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sagemaker").delete_pipeline(PipelineName=id_, ClientRequestToken=f"modelops-delete-{id_}"[:128])

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sagemaker").describe_pipeline(PipelineName=id_)
        return True
