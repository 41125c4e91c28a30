"""Monitors: alarms on the right metric of the right endpoint, notifying the right topics."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from modelops.components import naming
from modelops.components.metrics import JOB_METRICS
from modelops.graph.render import render
from modelops.graph.resource_types import TOPIC_SUBSCRIPTION as SUBSCRIPTION
from tests.components.helpers import ALARM, CASE_IDS, EXAMPLE_CASES, TOPIC, by_name, load, one, statements, tiny_artifact, variants_spec


def alarm_dimensions(alarm) -> list[dict]:
    if "metricQueries" in alarm.inputs:
        return [q["metric"]["dimensions"] for q in alarm.inputs["metricQueries"] if "metric" in q]
    return [alarm.inputs["dimensions"]]


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_every_alarm_watches_its_target_and_notifies_its_channels(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    topics = {t.inputs["name"]: t.outputs["arn"] for t in graph.by_type(TOPIC)}
    assert len(graph.by_type(ALARM)) == len(env.monitors)
    for monitor in env.monitors.values():
        alarm = by_name(graph, ALARM, naming.alarm_name(env.project, env.env, monitor.name))
        for dims in alarm_dimensions(alarm):
            if monitor.model:
                assert dims["EndpointName"] == naming.endpoint_name(env.project, env.env, monitor.model)
            else:
                assert dims["BucketName"] == naming.bucket_name(env.project, env.env, monitor.dataset, "123456789012")
        channels = monitor.notify or tuple(env.channels)
        expected = sorted(topics[naming.topic_name(env.project, env.env, c)] for c in channels)
        assert sorted(alarm.inputs["alarmActions"]) == expected
        assert sorted(alarm.inputs["okActions"]) == expected


def test_latency_threshold_is_converted_to_microseconds_with_the_percentile(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    alarm = by_name(graph, ALARM, "churn-dev-churn-latency")
    assert env.monitors["churn-latency"].threshold.value == pytest.approx(0.25)
    assert alarm.inputs["threshold"] == pytest.approx(250_000)
    assert alarm.inputs["extendedStatistic"] == "p99" and "statistic" not in alarm.inputs
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("AWS/SageMaker", "ModelLatency")
    assert alarm.inputs["treatMissingData"] == "notBreaching"


def test_error_rate_is_metric_math_over_invocations_with_a_ratio_threshold(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    alarm = by_name(graph, ALARM, "churn-dev-churn-errors")
    queries = {q["id"]: q for q in alarm.inputs["metricQueries"]}
    assert queries["errors"]["metric"]["metricName"] == "Invocation5XXErrors"
    assert queries["invocations"]["metric"]["metricName"] == "Invocations"
    assert queries["error_rate"]["returnData"] is True and "errors / invocations" in queries["error_rate"]["expression"]
    assert alarm.inputs["threshold"] == pytest.approx(0.02)
    assert "metricName" not in alarm.inputs


def test_freshness_alarms_when_nothing_was_written_for_the_window(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    alarm = by_name(graph, ALARM, "churn-dev-customers-fresh")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"], alarm.inputs["statistic"]) == ("AWS/S3", "PutRequests", "Sum")
    assert alarm.inputs["comparisonOperator"] == "LessThanThreshold" and alarm.inputs["threshold"] == 1
    assert alarm.inputs["treatMissingData"] == "breaching"
    # 48h window of 1-day periods: two empty days in a row
    assert alarm.inputs["period"] * alarm.inputs["evaluationPeriods"] == 48 * 3600
    metric_filter = one(graph.by_type("aws:s3/bucketMetric:BucketMetric"))
    assert alarm.inputs["dimensions"]["FilterId"] == metric_filter.inputs["name"]
    assert metric_filter.inputs["filter"] == {"prefix": "data/"}


def test_utilisation_floor_and_drift_alarms(variants):
    env, graph = variants
    cpu = by_name(graph, ALARM, "variants-dev-ranker-cpu")
    assert cpu.inputs["threshold"] == pytest.approx(80.0) and cpu.inputs["namespace"] == "/aws/sagemaker/Endpoints"
    assert by_name(graph, ALARM, "variants-dev-ranker-memory").inputs["metricName"] == "MemoryUtilization"
    floor = by_name(graph, ALARM, "variants-dev-ranker-floor")
    assert floor.inputs["comparisonOperator"] == "LessThanThreshold" and floor.inputs["treatMissingData"] == "breaching"
    assert (floor.inputs["period"], floor.inputs["evaluationPeriods"]) == (300, 3)
    drift = by_name(graph, ALARM, "variants-dev-ranker-drift")
    assert (drift.inputs["namespace"], drift.inputs["metricName"]) == ("ModelOps/Drift", "FeatureDriftPSI")
    assert drift.inputs["dimensions"] == {"EndpointName": "variants-dev-ranker"}
    assert drift.inputs["treatMissingData"] == "notBreaching"
    p50 = by_name(graph, ALARM, "variants-dev-scorer-p50")
    assert p50.inputs["extendedStatistic"] == "p50" and p50.inputs["threshold"] == pytest.approx(40_000)


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_topics_are_encrypted_and_only_cloudwatch_of_this_account_publishes(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    key_arn = one(graph.by_type("aws:kms/key:Key")).outputs["arn"]
    assert len(graph.by_type(TOPIC)) == len(env.channels)
    for topic in graph.by_type(TOPIC):
        assert topic.inputs["kmsMasterKeyId"] == key_arn
        policy = one(p for p in graph.by_type("aws:sns/topicPolicy:TopicPolicy") if p.inputs["arn"] == topic.outputs["arn"])
        (st,) = statements(policy.inputs["policy"])
        assert st["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and st["Action"] == "sns:Publish"
        assert st["Resource"] == topic.outputs["arn"]
        assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_sse_s3_topics_are_encrypted_with_a_rotated_key_cloudwatch_may_use(variants):
    # GIVEN the variants spec (encryption: sse-s3: S3-managed keys for storage, no environment key)
    env, graph = variants
    # THEN a key of the topics' own, rotated, that CloudWatch of this account may use to publish
    key = one(graph.by_type("aws:kms/key:Key"))
    assert key.name == "variants-dev-topics-key" and key.inputs["enableKeyRotation"] is True
    alias = one(graph.by_type("aws:kms/alias:Alias"))
    assert alias.inputs["name"] == naming.topics_kms_alias("variants", "dev") == "alias/variants-dev-topics"
    service = one(s for s in statements(key.inputs["policy"]) if s["Sid"] == "AlarmsPublishToEncryptedTopics")
    assert "cloudwatch.amazonaws.com" in service["Principal"]["Service"]
    assert service["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    # AND every topic is encrypted with it (not unencrypted, not alias/aws/sns)
    topics = graph.by_type(TOPIC)
    assert len(topics) == len(env.channels) == 2
    assert {t.inputs.get("kmsMasterKeyId") for t in topics} == {key.outputs["arn"]}


def test_https_endpoints_are_secret_and_masked_in_the_rendered_graph(variants):
    env, graph = variants
    url = env.channels["pager"].https[0]
    subs = {s.inputs["protocol"]: s for s in graph.by_type(SUBSCRIPTION)}
    assert set(subs) == {"email", "https", "sqs"}
    assert subs["sqs"].inputs["endpoint"] == "arn:aws:sqs:us-west-2:123456789012:alerts"
    # the registration keeps Pulumi's secret marker: backends unwrap it, printers mask it
    assert is_rpc_secret(subs["https"].inputs["endpoint"])
    assert unwrap_rpc_secret(subs["https"].inputs["endpoint"]) == url
    text = json.dumps(graph.to_json())
    assert url not in text and "very-secret-token" not in text
    https = one(r for r in graph.to_json()["resources"] if r["inputs"].get("protocol") == "https")
    assert https["inputs"]["endpoint"] == "[secret]"
    assert url in json.dumps(graph.to_json(reveal_secrets=True))


def test_dashboard_has_a_row_per_model_and_a_widget_per_dataset(variants):
    env, graph = variants
    body = json.loads(one(graph.by_type("aws:cloudwatch/dashboard:Dashboard")).inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    for model in env.models:
        assert any(t.startswith(f"{model}: latency") for t in titles)
        assert f"{model}: 5XX errors" in titles and f"{model}: invocations" in titles
    for dataset in env.datasets:
        assert f"{dataset}: writes (freshness)" in titles
    events = one(w for w in body["widgets"] if w["properties"]["title"].startswith("events:"))
    assert events["properties"]["metrics"][0][:4] == ["AWS/S3", "PutRequests", "BucketName", "variants-dev-events-123456789012"]


@pytest.mark.parametrize("length,periods", [("1h", 26), ("1d", 49)])
def test_a_freshness_alarm_honours_for_and_gets_the_periods_the_resolved_spec_shows(tmp_path, length, periods):
    # GIVEN the variants spec whose events-fresh monitor is "no write for 26h", for 1h or 1d
    spec = variants_spec(tmp_path)
    text = spec.read_text()
    assert "    above: 6h\n    period: 1h\n    for: 1h\n" in text
    spec.write_text(text.replace("    above: 6h\n    period: 1h\n    for: 1h\n", f"    above: 26h\n    period: 1h\n    for: {length}\n"))
    # WHEN it is resolved and rendered
    env = load(spec, "dev", tiny_artifact(tmp_path / "a"))
    alarm = by_name(render(env), ALARM, "variants-dev-events-fresh")
    # THEN 26 empty hours make the condition true, and it holds `for` after (1h: at once)
    assert (alarm.inputs["period"], alarm.inputs["evaluationPeriods"]) == (3600, periods)
    assert alarm.inputs["datapointsToAlarm"] == periods
    # AND the alarm gets what the resolved spec says, within CloudWatch's 7-day limit of hourly periods
    fresh = env.monitors["events-fresh"]
    assert (fresh.period_seconds, fresh.evaluation_periods) == (3600, periods)
    assert 3600 * periods <= 7 * 86400


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_every_alarm_gets_the_period_and_evaluation_periods_of_its_resolved_monitor(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    for monitor in env.monitors.values():
        alarm = by_name(graph, ALARM, naming.alarm_name(env.project, env.env, monitor.name))
        periods = [q["metric"]["period"] for q in alarm.inputs.get("metricQueries", []) if "metric" in q] or [alarm.inputs["period"]]
        assert set(periods) == {monitor.period_seconds}, monitor.name
        assert alarm.inputs["evaluationPeriods"] == monitor.evaluation_periods, monitor.name
        assert monitor.period_seconds * monitor.evaluation_periods <= (86400 if monitor.period_seconds < 3600 else 7 * 86400)


def test_dashboard_pages_stay_within_cloudwatchs_widget_limit_and_show_every_model_once() -> None:
    # GIVEN 7 models and 4 datasets, and a page limit of 9 widgets (3 rows)
    from modelops.components.metrics import MetricRef
    from modelops.components.monitor import dashboard_bodies

    def ref(name: str) -> MetricRef:
        return MetricRef("AWS/SageMaker", name, (("EndpointName", "e"),))

    endpoints = {f"m{i}": {"latency": ref("ModelLatency"), "errors": ref("Invocation5XXErrors"),
                           "invocations": ref("Invocations")} for i in range(7)}
    datasets = {f"d{i}": ref("PutRequests") for i in range(4)}
    # WHEN the bodies are built
    pages = [json.loads(body) for body in dashboard_bodies("eu-west-1", endpoints, datasets, max_widgets=9)]
    # THEN 9 rows (7 models, 2 rows of datasets) make 3 pages of at most 9 widgets, rows whole, laid out from the top
    assert [len(p["widgets"]) for p in pages] == [9, 9, 7]
    titles = [w["properties"]["title"] for p in pages for w in p["widgets"]]
    assert len(titles) == len(set(titles)) == 7 * 3 + 4
    assert all(min(w["y"] for w in p["widgets"]) == 0 for p in pages)
    assert {(w["x"], w["y"]) for w in pages[2]["widgets"]} == {(0, 0), (8, 0), (16, 0), (0, 6), (8, 6), (16, 6), (0, 12)}
    # AND the CloudWatch limit is the default: one page up to 166 models
    assert len(dashboard_bodies("eu-west-1", {f"m{i}": endpoints["m0"] for i in range(166)}, {})) == 1
    assert len(dashboard_bodies("eu-west-1", {f"m{i}": endpoints["m0"] for i in range(167)}, {})) == 2


def test_a_large_environment_gets_dashboard_pages_named_after_the_first(tmp_path) -> None:
    # GIVEN a generated 170-model environment (510 model widgets: more than one dashboard holds)
    import dataclasses

    from benchmarks.generate import write_project
    from modelops.spec.envs import load_environment
    from modelops.graph.render import render
    from tests.graph.helpers import FIXED_ARTIFACT

    artifact = tmp_path / "src.tar.gz"
    artifact.write_bytes(b"unused")
    env = load_environment(write_project(170, tmp_path / "proj", artifact), "dev")
    env = dataclasses.replace(env, models={k: dataclasses.replace(m, artifact=FIXED_ARTIFACT)
                                           for k, m in env.models.items()})
    # WHEN it is rendered
    dashboards = render(env).by_type("aws:cloudwatch/dashboard:Dashboard")
    # THEN it has two dashboards, the first keeping the environment's name, each within the limit
    assert [d.inputs["dashboardName"] for d in dashboards] == [f"{env.project}-dev", f"{env.project}-dev-2"]
    widgets = [json.loads(d.inputs["dashboardBody"])["widgets"] for d in dashboards]
    assert all(len(w) <= 500 for w in widgets)
    # (each model: latency, errors, invocations, and one per metric its monitor job publishes)
    published = {(m.model, m.metric) for m in env.monitors.values() if m.metric in JOB_METRICS}
    assert len(env.models) == 171 and len(published) == 170 + 45  # drift on all but the canary source; 45 others
    assert sum(len(w) for w in widgets) == 3 * len(env.models) + len(published) + len(env.datasets)


def test_the_dashboard_shows_a_models_job_metrics_under_its_latency_and_errors(renders) -> None:
    # GIVEN the churn example, whose churn-drift monitor is a data_drift job (above 0.2)
    env, graph = renders.get("modelops.yaml", "dev")
    body = json.loads(one(graph.by_type("aws:cloudwatch/dashboard:Dashboard")).inputs["dashboardBody"])
    widgets = {w["properties"]["title"]: w for w in body["widgets"]}
    latency = widgets["churn-classifier: latency p99 (µs)"]
    drift = widgets["churn-classifier: drift per feature"]
    # THEN the drift widget sits in the row under the model's latency and errors
    assert (drift["x"], drift["y"]) == (latency["x"], latency["y"] + 6)
    # AND draws the very metric the drift alarm watches, every feature's score, and the threshold
    alarm = by_name(graph, ALARM, "churn-dev-churn-drift")
    expression, largest = drift["properties"]["metrics"]
    assert largest[:4] == [alarm.inputs["namespace"], alarm.inputs["metricName"], "EndpointName",
                           alarm.inputs["dimensions"]["EndpointName"]]
    assert expression[0]["expression"] == (
        "SEARCH('{ModelOps/Drift,EndpointName,Feature} MetricName=\"FeatureDrift\" "
        "EndpointName=\"churn-dev-churn-classifier\"', 'Maximum', 3600)")
    assert drift["properties"]["annotations"]["horizontal"][0]["value"] == alarm.inputs["threshold"] == 0.2
    # AND a model without job monitors gets no such row
    assert not any(t.endswith("drift per feature") for t in widgets if not t.startswith("churn-classifier"))


def test_every_job_metric_gets_its_widget_with_the_monitors_threshold() -> None:
    from modelops.components import metrics
    from modelops.components.monitor import dashboard_bodies, job_widgets

    endpoint = "p-dev-m"
    ref = metrics.endpoint_invocations(endpoint)
    monitors = {"data_drift": ("m-drift", 0.2, "above"), "data_quality": ("m-dq", 0.01, "above"),
                "model_quality": ("m-acc", 0.8, "below"), "prediction_drift": ("m-pred", 0.1, "above")}
    jobs = {"m": job_widgets("m", endpoint, monitors)}
    (page,) = [json.loads(b) for b in dashboard_bodies("eu-west-1", {"m": dict(latency=ref, errors=ref, invocations=ref)},
                                                        {}, jobs=jobs)]
    row = [w for w in page["widgets"] if w["y"] == 6]
    # THEN four job widgets share the second row, a quarter of it each, each with its threshold
    assert [w["properties"]["title"] for w in row] == [
        "m: drift per feature", "m: data quality (violation share)", "m: prediction drift", "m: model quality"]
    assert [(w["x"], w["width"]) for w in row] == [(0, 6), (6, 6), (12, 6), (18, 6)]
    assert [w["properties"]["annotations"]["horizontal"][0]["value"] for w in row] == [0.2, 0.01, 0.1, 0.8]
    quality = row[3]["properties"]["metrics"][0]
    assert quality[:2] == ["ModelOps/Monitoring", "ModelQuality"] and quality[-1]["stat"] == "Minimum"
    # AND an error watched from above (rmse) shows its Maximum: the worst of a period, as its alarm takes
    (error_page,) = [json.loads(b) for b in dashboard_bodies(
        "eu-west-1", {"m": dict(latency=ref, errors=ref, invocations=ref)}, {},
        jobs={"m": job_widgets("m", endpoint, {"model_quality": ("m-rmse", 3.0, "above")})})]
    (error_line,) = [w for w in error_page["widgets"] if w["y"] == 6][0]["properties"]["metrics"]
    assert error_line[-1]["stat"] == "Maximum"


#: serving monitors added to the variants spec's ranker (it has a canary), and a monitor whose
#: name ends like a canary alarm's: names must stay distinct
RANKER_SERVING_MONITORS = """
  ranker-latency:
    model: ranker
    metric: latency_p99
    above: 200ms
    notify: [pager]
  ranker-errors:
    model: ranker
    metric: error_rate
    above: 1%
  ranker-cpu-canary:
    model: ranker
    metric: cpu_utilization
    above: 70%
"""


def canary_spec(tmp_path):
    spec = variants_spec(tmp_path)
    text = spec.read_text()
    assert "\nmonitors:\n" in text
    spec.write_text(text.replace("\nmonitors:\n", "\nmonitors:" + RANKER_SERVING_MONITORS, 1))
    return spec


def test_the_canary_gets_its_own_alarm_of_every_serving_monitor_with_the_same_threshold(tmp_path):
    # GIVEN the variants spec: ranker serves a canary, watched for latency, errors, cpu and memory
    env = load(canary_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    assert env.models["ranker"].serving.canary is not None
    # WHEN it is rendered
    graph = render(env)
    alarms = graph.by_type(ALARM)
    # THEN every serving monitor of ranker has a second alarm, on the canary variant
    serving = ["ranker-cpu", "ranker-cpu-canary", "ranker-errors", "ranker-latency", "ranker-memory"]
    assert sorted(m for m, spec in env.monitors.items()
                  if spec.model == "ranker" and spec.metric not in ("invocations", "data_drift")) == serving
    names = [a.inputs["name"] for a in alarms]
    assert len(names) == len(set(names)) == len(env.monitors) + len(serving)
    for monitor in serving:
        primary = by_name(graph, ALARM, naming.alarm_name(env.project, env.env, monitor))
        canary = by_name(graph, ALARM, naming.variant_alarm_name(env.project, env.env, monitor, "canary"))
        # AND it watches the same endpoint's canary variant, where the primary's watches the primary
        assert [d["VariantName"] for d in alarm_dimensions(primary)] == ["primary"] * len(alarm_dimensions(primary))
        assert [d["VariantName"] for d in alarm_dimensions(canary)] == ["canary"] * len(alarm_dimensions(primary))
        assert [d["EndpointName"] for d in alarm_dimensions(canary)] == [d["EndpointName"] for d in alarm_dimensions(primary)]
        # AND everything else is the monitor's: threshold, statistic, periods, comparison, channels
        same = {k: v for k, v in primary.inputs.items() if k not in ("name", "dimensions", "metricQueries", "alarmDescription")}
        assert {k: canary.inputs.get(k) for k in same} == same, monitor
        assert canary.inputs["alarmDescription"].endswith("(canary variant)")
    queries = {q["id"]: q for q in by_name(graph, ALARM, "variants-dev-ranker-errors--canary").inputs["metricQueries"]}
    assert queries["error_rate"]["label"] == "5XX error rate of ranker (canary variant)"
    assert queries["error_rate"]["expression"] == "IF(invocations > 0, errors / invocations, 0)"
    assert by_name(graph, ALARM, "variants-dev-ranker-latency--canary").inputs["threshold"] == pytest.approx(200_000)


def test_no_variant_alarm_where_there_is_no_canary_or_the_metric_is_not_per_variant(tmp_path):
    # GIVEN the variants spec: ranker's invocation floor and drift, reranker's shadow, scorer without canary
    env = load(canary_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    # WHEN it is rendered
    names = {a.inputs["name"] for a in render(env).by_type(ALARM)}
    # THEN none of those monitors has a canary alarm: a canary's traffic is its weight's share, a
    # drift score is the endpoint's, and a shadow serves no request
    for monitor in ("ranker-floor", "ranker-drift", "scorer-p50", "events-fresh"):
        assert naming.alarm_name(env.project, env.env, monitor) in names
        assert naming.variant_alarm_name(env.project, env.env, monitor, "canary") not in names
    assert not [n for n in names if n.endswith("--shadow")]


QUALITY_MONITORS = """
  ranker-rmse:
    model: ranker
    metric: model_quality
    quality: rmse
    above: 3
  reranker-accuracy:
    model: reranker
    metric: model_quality
    quality: accuracy
    below: 0.8
"""


def test_a_quality_alarm_takes_the_worst_value_of_its_period(tmp_path):
    # GIVEN an error watched from above (rmse) and a score watched from below (accuracy)
    spec = variants_spec(tmp_path)
    spec.write_text(spec.read_text().replace("\nmonitors:\n", "\nmonitors:" + QUALITY_MONITORS, 1))
    graph = render(load(spec, "dev", tiny_artifact(tmp_path / "a")))
    rmse = by_name(graph, ALARM, "variants-dev-ranker-rmse")
    accuracy = by_name(graph, ALARM, "variants-dev-reranker-accuracy")
    # THEN each alarms on the worst run of a period: the largest error, the smallest score
    assert (rmse.inputs["metricName"], rmse.inputs["statistic"], rmse.inputs["comparisonOperator"]) == (
        "ModelQuality", "Maximum", "GreaterThanThreshold")
    assert (accuracy.inputs["statistic"], accuracy.inputs["comparisonOperator"]) == ("Minimum", "LessThanThreshold")
