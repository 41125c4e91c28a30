"""How an endpoint update moves traffic to the new fleet: the endpoint's ``deployment_config``.

SageMaker updates an endpoint blue/green: it provisions the new (green) fleet, shifts
traffic to it from the old (blue) one, and lets the old fleet go once the new one has
baked. ``serving.rollout`` chooses how the traffic shifts:

``all_at_once`` (the default)
    every request at once, then ``wait`` of baking;
``canary``
    ``percent`` of the new fleet's capacity first, ``wait``, then the rest;
``linear``
    ``percent`` at a time, ``wait`` after each step.

Every shift bakes under the model's own alarms (``auto_rollback_configuration``): one
that fires sends all traffic back to the old fleet. The old fleet is kept 10 minutes
after the last shift, and a canary or linear update gets a deadline
(``maximum_execution_timeout_in_seconds``) covering its waits plus 30 minutes to
provision the new fleet (``Rollout.deadline_seconds``). ``modelops validate`` refuses what SageMaker would not do
(``modelops.spec.model_rules.rollout_mode_problems``).

Example::

    deployment_config(Rollout("canary", 10, 900), ("churn-dev-churn-latency",))
"""

from __future__ import annotations

import pulumi_aws as aws

from modelops.spec.resolved import ROLLOUT_TERMINATION_WAIT_SECONDS, Rollout

#: SageMaker allows at most this many auto-rollback alarms on an endpoint
MAX_ROLLBACK_ALARMS = 10

_TYPES = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}


def deployment_config(rollout: Rollout, rollback_alarms: tuple[str, ...]) -> aws.sagemaker.EndpointDeploymentConfigArgs:
    """The endpoint's blue/green deployment configuration for ``rollout``, rolling back on ``rollback_alarms``."""
    size = None
    if rollout.mode != "all_at_once":
        size = {"type": "CAPACITY_PERCENT", "value": int(rollout.percent or 0)}
    routing = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
        type=_TYPES[rollout.mode],
        wait_interval_in_seconds=rollout.wait_seconds,
        canary_size=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(**size)
        if size and rollout.mode == "canary" else None,
        linear_step_size=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(**size)
        if size and rollout.mode == "linear" else None,
    )
    alarms = sorted(rollback_alarms)[:MAX_ROLLBACK_ALARMS]
    return aws.sagemaker.EndpointDeploymentConfigArgs(
        blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=ROLLOUT_TERMINATION_WAIT_SECONDS,
            maximum_execution_timeout_in_seconds=rollout.deadline_seconds,
        ),
        auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
            alarms=[aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=a) for a in alarms]
        )
        if alarms
        else None,
    )
