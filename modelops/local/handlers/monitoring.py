"""SNS topics, their policies and subscriptions; CloudWatch alarms and dashboards."""

from __future__ import annotations

import json
from typing import Any

from modelops.graph.resource_types import DASHBOARD, METRIC_ALARM, TOPIC, TOPIC_POLICY, TOPIC_SUBSCRIPTION
from modelops.local.handlers.base import Context, Handler, drop_none, handler, plain, tag_list
from modelops.local.handlers.base import is_not_found

#: pulumi_aws topic inputs that are SNS topic attributes
_TOPIC_ATTRIBUTES = {
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "policy": "Policy",
    "deliveryPolicy": "DeliveryPolicy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
    "contentBasedDeduplication": "ContentBasedDeduplication",
}


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(plain(value))


@handler
class Topic(Handler):
    token = TOPIC
    name_key = "name"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        attributes = {attr: _attr(inputs[key]) for key, attr in _TOPIC_ATTRIBUTES.items() if inputs.get(key) is not None}
        if inputs.get("fifoTopic"):
            attributes["FifoTopic"] = "true"
        arn = ctx.client("sns").create_topic(
            **drop_none(Name=name, Attributes=attributes, Tags=tag_list(inputs.get("tags")))
        )["TopicArn"]
        return arn, {"name": name, "arn": arn}

    def expected_id(self, ctx: Context, physical: str, inputs: dict[str, Any]) -> str:
        return f"arn:aws:sns:{ctx.region}:{ctx.account}:{physical}"

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        sns = ctx.client("sns")
        for key, attr in _TOPIC_ATTRIBUTES.items():
            if inputs.get(key) != old.get(key):
                sns.set_topic_attributes(TopicArn=id_, AttributeName=attr, AttributeValue=_attr(inputs.get(key) or ""))
        if inputs.get("tags"):
            sns.tag_resource(ResourceArn=id_, Tags=tag_list(inputs["tags"]))
        return {"name": id_.rsplit(":", 1)[1], "arn": id_}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sns").delete_topic(TopicArn=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sns").get_topic_attributes(TopicArn=id_)
        return True


@handler
class TopicPolicy(Handler):
    token = TOPIC_POLICY

    def _set(self, ctx: Context, arn: str, policy: Any) -> dict[str, Any]:
        text = policy if isinstance(policy, str) else json.dumps(policy)
        ctx.client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=text)
        owner = ctx.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"].get("Owner", "")
        return {"arn": arn, "owner": owner}

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return inputs["arn"], self._set(ctx, inputs["arn"], inputs["policy"])

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, id_, inputs["policy"])

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        # As the provider does: the topic gets back its default (owner-only) policy.
        account = id_.split(":")[4]
        default = {
            "Version": "2008-10-17",
            "Statement": [{
                "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
                "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                           "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic",
                           "SNS:Publish"],
                "Resource": id_, "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
            }],
        }
        from botocore.exceptions import ClientError

        try:
            ctx.client("sns").set_topic_attributes(TopicArn=id_, AttributeName="Policy", AttributeValue=json.dumps(default))
        except ClientError as exc:
            if not is_not_found(exc):
                raise

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        return bool(ctx.client("sns").get_topic_attributes(TopicArn=id_)["Attributes"].get("Policy"))

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return id_


_SUBSCRIPTION_ATTRIBUTES = {
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "rawMessageDelivery": "RawMessageDelivery",
    "redrivePolicy": "RedrivePolicy",
    "deliveryPolicy": "DeliveryPolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


@handler
class TopicSubscription(Handler):
    token = TOPIC_SUBSCRIPTION

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        attributes = {a: _attr(inputs[k]) for k, a in _SUBSCRIPTION_ATTRIBUTES.items() if inputs.get(k) is not None}
        arn = ctx.client("sns").subscribe(
            **drop_none(TopicArn=inputs["topic"], Protocol=inputs["protocol"], Endpoint=inputs["endpoint"],
                        Attributes=attributes, ReturnSubscriptionArn=True)
        )["SubscriptionArn"]
        return arn, {"arn": arn, "topic": inputs["topic"], "protocol": inputs["protocol"],
                     "pendingConfirmation": inputs["protocol"] in ("email", "email-json", "http", "https")}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        sns = ctx.client("sns")
        for key, attr in _SUBSCRIPTION_ATTRIBUTES.items():
            if inputs.get(key) != old.get(key):
                sns.set_subscription_attributes(SubscriptionArn=id_, AttributeName=attr,
                                                AttributeValue=_attr(inputs.get(key) or ""))
        return {"arn": id_, "topic": inputs["topic"], "protocol": inputs["protocol"]}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("sns").unsubscribe(SubscriptionArn=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("sns").get_subscription_attributes(SubscriptionArn=id_)
        return True


def _dimensions(dimensions: dict[str, Any] | None) -> list[dict[str, str]]:
    return [{"Name": k, "Value": str(v)} for k, v in sorted((dimensions or {}).items())]


def metric_query(query: dict[str, Any]) -> dict[str, Any]:
    """One pulumi_aws ``metricQueries`` entry as the CloudWatch API's ``MetricDataQuery``."""
    out = drop_none(
        Id=query["id"],
        Expression=query.get("expression"),
        Label=query.get("label"),
        ReturnData=query.get("returnData"),
        Period=query.get("period"),
        AccountId=query.get("accountId"),
    )
    metric = query.get("metric")
    if metric:
        out["MetricStat"] = drop_none(
            Metric=drop_none(
                Namespace=metric.get("namespace"),
                MetricName=metric["metricName"],
                Dimensions=_dimensions(metric.get("dimensions")),
            ),
            Period=metric["period"],
            Stat=metric["stat"],
            Unit=metric.get("unit"),
        )
    return out


@handler
class MetricAlarm(Handler):
    token = METRIC_ALARM
    name_key = "name"

    def _put(self, ctx: Context, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        cw = ctx.client("cloudwatch")
        params = drop_none(
            AlarmName=name,
            AlarmDescription=inputs.get("alarmDescription"),
            ActionsEnabled=inputs.get("actionsEnabled", True),
            AlarmActions=inputs.get("alarmActions"),
            OKActions=inputs.get("okActions"),
            InsufficientDataActions=inputs.get("insufficientDataActions"),
            MetricName=inputs.get("metricName"),
            Namespace=inputs.get("namespace"),
            Statistic=inputs.get("statistic"),
            ExtendedStatistic=inputs.get("extendedStatistic"),
            Dimensions=_dimensions(inputs.get("dimensions")),
            Period=inputs.get("period"),
            Unit=inputs.get("unit"),
            EvaluationPeriods=inputs["evaluationPeriods"],
            DatapointsToAlarm=inputs.get("datapointsToAlarm"),
            ComparisonOperator=inputs["comparisonOperator"],
            TreatMissingData=inputs.get("treatMissingData"),
            EvaluateLowSampleCountPercentile=inputs.get("evaluateLowSampleCountPercentiles"),
            Metrics=[metric_query(q) for q in inputs.get("metricQueries") or []],
            ThresholdMetricId=inputs.get("thresholdMetricId"),
            Tags=tag_list(inputs.get("tags")),
        )
        if inputs.get("threshold") is not None:
            params["Threshold"] = float(inputs["threshold"])
        cw.put_metric_alarm(**params)
        arn = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
        return {"name": name, "arn": arn}

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return name, self._put(ctx, name, inputs)

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return self._put(ctx, id_, inputs)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[id_])

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        return bool(ctx.client("cloudwatch").describe_alarms(AlarmNames=[id_])["MetricAlarms"])


@handler
class Dashboard(Handler):
    token = DASHBOARD
    name_key = "dashboardName"

    def _put(self, ctx: Context, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        body = inputs["dashboardBody"]
        ctx.client("cloudwatch").put_dashboard(
            DashboardName=name, DashboardBody=body if isinstance(body, str) else json.dumps(body)
        )
        arn = ctx.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardArn"]
        return {"dashboardName": name, "dashboardArn": arn}

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return name, self._put(ctx, name, inputs)

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return self._put(ctx, id_, inputs)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("cloudwatch").delete_dashboards(DashboardNames=[id_])

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("cloudwatch").get_dashboard(DashboardName=id_)
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return str(outputs.get("dashboardArn") or id_)
