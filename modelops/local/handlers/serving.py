"""IAM roles and policies, SageMaker models/configurations/endpoints/registry, autoscaling."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from modelops.graph.resource_types import (
    ENDPOINT, ENDPOINT_CONFIG, MODEL_PACKAGE_GROUP, ROLE, ROLE_POLICY, SAGEMAKER_MODEL,
    SCALING_POLICY, SCALING_TARGET,
)
from modelops.local.handlers.base import Context, Handler, drop_none, handler, is_not_found, pascal, plain, tag_list


def _doc(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


# --- IAM ---------------------------------------------------------------------------------------


@handler
class Role(Handler):
    token = ROLE
    name_key = "name"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        iam = ctx.client("iam")
        role = iam.create_role(
            **drop_none(
                RoleName=name,
                AssumeRolePolicyDocument=_doc(inputs["assumeRolePolicy"]),
                Description=inputs.get("description"),
                Path=inputs.get("path"),
                MaxSessionDuration=inputs.get("maxSessionDuration"),
                PermissionsBoundary=inputs.get("permissionsBoundary"),
                Tags=tag_list(inputs.get("tags")),
            )
        )["Role"]
        for policy in inputs.get("inlinePolicies") or []:
            if policy.get("name"):
                iam.put_role_policy(RoleName=name, PolicyName=policy["name"], PolicyDocument=_doc(policy["policy"]))
        for arn in inputs.get("managedPolicyArns") or []:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return name, self._outputs(role)

    @staticmethod
    def _outputs(role: dict[str, Any]) -> dict[str, Any]:
        return {"name": role["RoleName"], "arn": role["Arn"], "uniqueId": role["RoleId"],
                "createDate": str(role["CreateDate"])}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        iam = ctx.client("iam")
        if inputs.get("assumeRolePolicy") != old.get("assumeRolePolicy"):
            iam.update_assume_role_policy(RoleName=id_, PolicyDocument=_doc(inputs["assumeRolePolicy"]))
        iam.update_role(**drop_none(RoleName=id_, Description=inputs.get("description") or "",
                                    MaxSessionDuration=inputs.get("maxSessionDuration")))
        if inputs.get("tags"):
            iam.tag_role(RoleName=id_, Tags=tag_list(inputs["tags"]))
        return self._outputs(iam.get_role(RoleName=id_)["Role"])

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        iam = ctx.client("iam")
        # AWS refuses to delete a role that still has policies; the provider detaches first.
        for policy in iam.list_role_policies(RoleName=id_)["PolicyNames"]:
            iam.delete_role_policy(RoleName=id_, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=id_)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=id_, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("iam").get_role(RoleName=id_)
        return True


@handler
class RolePolicy(Handler):
    token = ROLE_POLICY
    name_key = "name"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        role = inputs["role"]
        ctx.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=_doc(inputs["policy"]))
        return f"{role}:{name}", {"name": name, "role": role}

    def expected_id(self, ctx: Context, physical: str, inputs: dict[str, Any]) -> str:
        return f"{inputs['role']}:{physical}"

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        role, name = id_.split(":", 1)
        ctx.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=_doc(inputs["policy"]))
        return {"name": name, "role": role}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        role, name = id_.split(":", 1)
        ctx.client("iam").delete_role_policy(RoleName=role, PolicyName=name)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        role, name = id_.split(":", 1)
        ctx.client("iam").get_role_policy(RoleName=role, PolicyName=name)
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return id_


# --- SageMaker ---------------------------------------------------------------------------------

_SAGEMAKER_RENAMES = {"kmsKeyArn": "KmsKeyId", "enableCapture": "EnableCapture"}


@handler
class SageMakerModel(Handler):
    token = SAGEMAKER_MODEL
    name_key = "name"
    # SageMaker models are immutable: every change but tags is a new model.

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        params = drop_none(
            ModelName=name,
            ExecutionRoleArn=inputs.get("executionRoleArn"),
            PrimaryContainer=pascal(inputs["primaryContainer"]) if inputs.get("primaryContainer") else None,
            Containers=pascal(inputs.get("containers")) if inputs.get("containers") else None,
            EnableNetworkIsolation=inputs.get("enableNetworkIsolation"),
            VpcConfig=pascal(inputs.get("vpcConfig"), {"securityGroupIds": "SecurityGroupIds"})
            if inputs.get("vpcConfig") else None,
            Tags=tag_list(inputs.get("tags")),
        )
        arn = ctx.client("sagemaker").create_model(**params)["ModelArn"]
        return name, {"name": name, "arn": arn}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sagemaker").delete_model(ModelName=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sagemaker").describe_model(ModelName=id_)
        return True


def production_variant(variant: dict[str, Any]) -> dict[str, Any]:
    """One pulumi_aws production (or shadow) variant as the SageMaker API's ``ProductionVariant``."""
    return pascal(variant, {**_SAGEMAKER_RENAMES, "memorySizeInMb": "MemorySizeInMB"})


@handler
class EndpointConfiguration(Handler):
    token = ENDPOINT_CONFIG
    name_key = "name"
    # Endpoint configurations are immutable in SageMaker.

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        capture = inputs.get("dataCaptureConfig")
        params = drop_none(
            EndpointConfigName=name,
            ProductionVariants=[production_variant(v) for v in inputs["productionVariants"]],
            ShadowProductionVariants=[production_variant(v) for v in inputs.get("shadowProductionVariants") or []],
            DataCaptureConfig=pascal(capture, _SAGEMAKER_RENAMES) if capture else None,
            KmsKeyId=inputs.get("kmsKeyArn"),
            AsyncInferenceConfig=pascal(inputs["asyncInferenceConfig"]) if inputs.get("asyncInferenceConfig") else None,
            ExecutionRoleArn=inputs.get("executionRoleArn"),
            Tags=tag_list(inputs.get("tags")),
        )
        if "DataCaptureConfig" in params:
            params["DataCaptureConfig"].setdefault("EnableCapture", True)
        arn = ctx.client("sagemaker").create_endpoint_config(**params)["EndpointConfigArn"]
        return name, {"name": name, "arn": arn}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sagemaker").delete_endpoint_config(EndpointConfigName=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sagemaker").describe_endpoint_config(EndpointConfigName=id_)
        return True


@handler
class Endpoint(Handler):
    """A SageMaker endpoint. moto 5.2.5 has no ``UpdateEndpoint``: locally, a new
    configuration is applied by deleting and re-creating the endpoint under the same name
    (AWS would update it in place, blue/green); the action is reported as such."""

    token = ENDPOINT
    name_key = "name"
    note = "moto has no UpdateEndpoint: updated locally by delete + create under the same name"

    def _create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        sm = ctx.client("sagemaker")
        params = drop_none(
            EndpointName=name,
            EndpointConfigName=inputs["endpointConfigName"],
            DeploymentConfig=_deployment_config(inputs.get("deploymentConfig")),
            Tags=tag_list(inputs.get("tags")),
        )
        arn = sm.create_endpoint(**params)["EndpointArn"]
        self._wait_in_service(ctx, name)
        return {"name": name, "arn": arn}

    @staticmethod
    def _wait_in_service(ctx: Context, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = ctx.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"]
            if status == "InService":
                return
            if status == "Failed" or time.monotonic() > deadline:
                raise RuntimeError(f"endpoint {name} is {status}, not InService")
            time.sleep(0.2)

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return name, self._create(ctx, name, inputs)

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        self.delete(ctx, id_, old)
        self._wait_gone(ctx, id_)
        return self._create(ctx, id_, inputs)

    @staticmethod
    def _wait_gone(ctx: Context, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ctx.client("sagemaker").describe_endpoint(EndpointName=name)
            except ClientError as exc:
                if is_not_found(exc):
                    return
                raise
            time.sleep(0.2)
        raise RuntimeError(f"endpoint {name} was not deleted within {timeout:.0f}s")

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sagemaker").delete_endpoint(EndpointName=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sagemaker").describe_endpoint(EndpointName=id_)
        return True


def _deployment_config(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    converted = pascal(config)
    rollback = converted.get("AutoRollbackConfiguration")
    if rollback and "Alarms" in rollback:
        rollback["Alarms"] = [{"AlarmName": a["AlarmName"]} for a in rollback["Alarms"]]
    return converted


@handler
class ModelPackageGroup(Handler):
    token = MODEL_PACKAGE_GROUP
    name_key = "modelPackageGroupName"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = ctx.client("sagemaker").create_model_package_group(
            **drop_none(
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=inputs.get("modelPackageGroupDescription"),
                Tags=tag_list(inputs.get("tags")),
            )
        )["ModelPackageGroupArn"]
        return name, {"modelPackageGroupName": name, "arn": arn}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sagemaker").delete_model_package_group(ModelPackageGroupName=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sagemaker").describe_model_package_group(ModelPackageGroupName=id_)
        return True


# --- Application Auto Scaling ------------------------------------------------------------------


@handler
class ScalableTarget(Handler):
    token = SCALING_TARGET

    def _register(self, ctx: Context, inputs: dict[str, Any]) -> dict[str, Any]:
        response = ctx.client("application-autoscaling").register_scalable_target(
            **drop_none(
                ServiceNamespace=inputs["serviceNamespace"],
                ResourceId=inputs["resourceId"],
                ScalableDimension=inputs["scalableDimension"],
                MinCapacity=plain(inputs.get("minCapacity")),
                MaxCapacity=plain(inputs.get("maxCapacity")),
                RoleARN=inputs.get("roleArn"),
                SuspendedState=pascal(inputs["suspendedState"]) if inputs.get("suspendedState") else None,
            )
        )
        return {
            "resourceId": inputs["resourceId"],
            "scalableDimension": inputs["scalableDimension"],
            "serviceNamespace": inputs["serviceNamespace"],
            "arn": response.get("ScalableTargetARN", ""),
        }

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return inputs["resourceId"], self._register(ctx, inputs)

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return self._register(ctx, inputs)

    def _find(self, ctx: Context, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        return ctx.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace=outputs["serviceNamespace"],
            ResourceIds=[outputs["resourceId"]],
            ScalableDimension=outputs["scalableDimension"],
        )["ScalableTargets"]

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("application-autoscaling").deregister_scalable_target(
            ServiceNamespace=outputs["serviceNamespace"],
            ResourceId=outputs["resourceId"],
            ScalableDimension=outputs["scalableDimension"],
        )

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        return bool(self._find(ctx, outputs))

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return id_


@handler
class ScalingPolicy(Handler):
    token = SCALING_POLICY
    name_key = "name"

    def _put(self, ctx: Context, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        tracking = inputs.get("targetTrackingScalingPolicyConfiguration")
        response = ctx.client("application-autoscaling").put_scaling_policy(
            **drop_none(
                PolicyName=name,
                ServiceNamespace=inputs["serviceNamespace"],
                ResourceId=inputs["resourceId"],
                ScalableDimension=inputs["scalableDimension"],
                PolicyType=inputs.get("policyType"),
                TargetTrackingScalingPolicyConfiguration=_tracking(tracking) if tracking else None,
                StepScalingPolicyConfiguration=pascal(inputs["stepScalingPolicyConfiguration"])
                if inputs.get("stepScalingPolicyConfiguration") else None,
            )
        )
        return {
            "name": name,
            "arn": response["PolicyARN"],
            "alarmArns": [a["AlarmARN"] for a in response.get("Alarms", [])],
            "resourceId": inputs["resourceId"],
            "scalableDimension": inputs["scalableDimension"],
            "serviceNamespace": inputs["serviceNamespace"],
        }

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return name, self._put(ctx, name, inputs)

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return self._put(ctx, id_, inputs)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("application-autoscaling").delete_scaling_policy(
            PolicyName=id_,
            ServiceNamespace=outputs["serviceNamespace"],
            ResourceId=outputs["resourceId"],
            ScalableDimension=outputs["scalableDimension"],
        )

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        return bool(
            ctx.client("application-autoscaling").describe_scaling_policies(
                ServiceNamespace=outputs["serviceNamespace"], PolicyNames=[id_], ResourceId=outputs["resourceId"]
            )["ScalingPolicies"]
        )


def _tracking(config: dict[str, Any]) -> dict[str, Any]:
    converted = pascal(config)
    custom = converted.get("CustomizedMetricSpecification")
    if custom and isinstance(custom.get("Dimensions"), list):
        custom["Dimensions"] = [{"Name": d["Name"], "Value": d["Value"]} for d in custom["Dimensions"]]
    if "TargetValue" in converted:
        converted["TargetValue"] = float(converted["TargetValue"])
    return converted
