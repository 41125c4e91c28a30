"""Monthly cost estimates: instance hours from the price file, usage-based and unpriced named."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from modelops.review.cost import estimate, instance_hourly, prices
from modelops.graph.runtime import Registration

REGION = "us-east-1"


def reg(type_: str, name: str, inputs: dict | None = None, custom: bool = True) -> Registration:
    return Registration(urn=f"urn:pulumi:dev::p::{type_}::{name}", type=type_, name=name, custom=custom,
                        inputs=inputs or {})


def endpoint_config(name: str, instance_type: str, count: int, **extra) -> Registration:
    variant = {"variantName": "primary", "instanceType": instance_type, "initialInstanceCount": count}
    return reg("aws:sagemaker/endpointConfiguration:EndpointConfiguration", name,
               {"productionVariants": [variant], **extra})


def test_price_file_states_source_and_date():
    data = json.loads(resources.files("modelops.data").joinpath("prices.json").read_text())
    assert "aws.amazon.com/sagemaker/pricing" in data["source"]
    assert data["as_of"][:4].isdigit()
    for itype in ("ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.large",
                  "ml.c5.xlarge", "ml.g4dn.xlarge"):
        for region in ("us-east-1", "us-west-2", "eu-west-1"):
            assert instance_hourly(itype, region) is not None, (itype, region)


@pytest.mark.parametrize("itype,count", [("ml.m5.large", 1), ("ml.m5.large", 3), ("ml.c5.xlarge", 2)])
def test_instance_line_is_price_times_730_times_count(itype, count):
    # GIVEN an endpoint configuration with a known instance type
    hourly = prices()["sagemaker_realtime_hourly"][REGION]["prices"][itype]
    # WHEN it is estimated
    report = estimate([endpoint_config("cfg", itype, count)], REGION)
    # THEN one line, price × 730 × count
    [line] = report.lines
    assert line.monthly == pytest.approx(hourly * 730 * count)
    assert report.total_monthly == pytest.approx(round(hourly * 730 * count, 2))
    assert not report.unpriced


def test_unknown_instance_type_and_type_are_named_not_zero():
    report = estimate(
        [endpoint_config("cfg", "ml.p5.48xlarge", 1), reg("aws:ec2/instance:Instance", "box")], REGION
    )
    assert report.total_monthly == 0
    reasons = {u.name: u.reason for u in report.unpriced}
    assert "ml.p5.48xlarge" in reasons["cfg/primary"]
    assert "aws:ec2/instance:Instance" in reasons["box"]


def test_unknown_region_is_unpriced():
    report = estimate([endpoint_config("cfg", "ml.m5.large", 1)], "af-south-1")
    assert [u.name for u in report.unpriced] == ["cfg/primary"]


def test_serverless_is_usage_based():
    variant = {"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 2048, "maxConcurrency": 5}}
    report = estimate([reg("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "cfg",
                           {"productionVariants": [variant]})], REGION)
    assert report.total_monthly == 0 and not report.unpriced
    assert "GB-second" in report.usage_based[0].depends_on


def test_alarms_dashboards_keys_and_usage_types():
    cw = prices()["cloudwatch"]
    graph = [
        reg("aws:cloudwatch/metricAlarm:MetricAlarm", "std", {"period": 60}),
        reg("aws:cloudwatch/metricAlarm:MetricAlarm", "hires", {"period": 10}),
        reg("aws:cloudwatch/metricAlarm:MetricAlarm", "math", {"metricQueries": [
            {"id": "e", "expression": "a/b"}, {"id": "a", "metric": {"period": 60}}, {"id": "b", "metric": {"period": 60}}]}),
        reg("aws:cloudwatch/dashboard:Dashboard", "dash"),
        reg("aws:kms/key:Key", "key"),
        reg("aws:sns/topic:Topic", "topic"),
        reg("aws:s3/bucket:Bucket", "bucket"),
        reg("aws:glue/catalogDatabase:CatalogDatabase", "db"),
        reg("aws:iam/role:Role", "role"),
        reg("modelops:index:Dataset", "component", custom=False),
    ]
    report = estimate(graph, REGION)
    monthly = {line.name: line.monthly for line in report.lines}
    assert monthly["std"] == pytest.approx(cw["alarm_standard_per_metric_month"])
    assert monthly["hires"] == pytest.approx(cw["alarm_high_resolution_per_metric_month"])
    assert monthly["math"] == pytest.approx(2 * cw["alarm_standard_per_metric_month"])
    assert monthly["dash"] == pytest.approx(cw["dashboard_per_month"])
    assert monthly["key"] == pytest.approx(prices()["kms"]["customer_managed_key_per_month"])
    assert {u.name for u in report.usage_based} == {"topic", "bucket", "db"}
    assert report.free == 1 and not report.unpriced
    out = report.to_dict()
    assert out["total_monthly"] == report.total_monthly and out["source"] and out["as_of"]


def test_approximate_prices_are_marked():
    assert instance_hourly("ml.m5.large", "us-east-1")[1] is False
    assert instance_hourly("ml.g4dn.xlarge", "us-east-1")[1] is True
    assert instance_hourly("ml.m5.large", "eu-west-1")[1] is True
    report = estimate([endpoint_config("cfg", "ml.m5.large", 1)], "eu-west-1")
    assert report.approximate and report.to_dict()["approximate"]
