"""``modelops diff``: a table of spec changes with the classification and risks reviewers rely on."""

from __future__ import annotations

import json
import shutil

import pytest

from modelops.graph.resource_types import ENDPOINT_CONFIG, ENDPOINT, METRIC_ALARM as ALARM, BUCKET
from modelops.review.cost import prices
from modelops.review.diff import diff
from modelops.review.formats import to_markdown, to_text
from tests.review.helpers import BASE, spec_pair


def env_of(report, name):
    [env] = [e for e in report.envs if e.env == name]
    return env


def actions(env, type_):
    return sorted(r.action for r in env.resources if r.type == type_)


def flag_kinds(env):
    return {f.kind for f in env.flags}


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """Each case diffed once (module scope: the render cache is shared, the cases are independent)."""
    out = {}
    base = tmp_path_factory.mktemp("base") / "spec"
    shutil.copytree(BASE, base)
    for case in ("remove-dataset", "instance-type", "alarm-threshold", "widen-grant", "remove-protect",
                 "remove-monitor", "lower-capacity", "add-webhook"):
        head, _ = spec_pair(tmp_path_factory.mktemp(case), case, base)
        envs = ["prod"] if case in ("remove-protect", "lower-capacity") else ["dev"]
        out[case] = diff(head, str(base), envs=envs)
    return out


def test_remove_dataset_is_data_loss(reviews):
    dev = env_of(reviews["remove-dataset"], "dev")
    assert [(c.kind, c.name, c.action) for c in dev.entities] == [("datasets", "events", "removed")]
    assert actions(dev, BUCKET) == ["delete"]
    [loss] = [f for f in dev.flags if f.kind == "data-loss"]
    assert loss.entity == "datasets.events" and "deleted" in loss.reason
    assert reviews["remove-dataset"].failed_conditions(["data-loss"])


def test_instance_type_replaces_the_config_and_updates_the_endpoint_in_place(reviews):
    dev = env_of(reviews["instance-type"], "dev")
    [field] = dev.entities[0].fields
    assert (field.path, field.old, field.new) == ("serving.instance_type", "ml.m5.large", "ml.m5.xlarge")
    assert actions(dev, ENDPOINT_CONFIG) == ["replace"]
    assert actions(dev, ENDPOINT) == ["update"]
    [config] = [r for r in dev.resources if r.type == ENDPOINT_CONFIG]
    assert config.causes[0] == "productionVariants[0].instanceType"
    assert "endpoint-updated" in flag_kinds(dev) and "endpoint-replaced" not in flag_kinds(dev)
    assert "data-loss" not in flag_kinds(dev)


def test_instance_type_cost_is_price_times_730(reviews):
    dev = env_of(reviews["instance-type"], "dev")
    table = prices()["sagemaker_realtime_hourly"]["us-east-1"]["prices"]
    [before] = [line for line in dev.cost_before.lines if line.type == ENDPOINT_CONFIG]
    [after] = [line for line in dev.cost_after.lines if line.type == ENDPOINT_CONFIG]
    assert before.monthly == pytest.approx(table["ml.m5.large"] * 730 * 1)
    assert after.monthly == pytest.approx(table["ml.m5.xlarge"] * 730 * 1)
    assert dev.cost_delta == pytest.approx(round(after.monthly - before.monthly, 2), abs=0.011)
    assert reviews["instance-type"].failed_conditions(["cost>50"])
    assert not reviews["instance-type"].failed_conditions(["cost>1000"])


def test_alarm_threshold_updates_the_alarm_in_place(reviews):
    dev = env_of(reviews["alarm-threshold"], "dev")
    assert [(r.type, r.action) for r in dev.resources] == [(ALARM, "update")]
    assert any("threshold" in c for c in dev.resources[0].causes)
    assert dev.flags == []


def test_model_reading_another_dataset_widens_permissions(reviews):
    dev = env_of(reviews["widen-grant"], "dev")
    widened = [f for f in dev.flags if f.kind == "permission-widened"]
    assert widened and any("events" in f.reason for f in widened)


def test_removing_protect_is_flagged(reviews):
    prod = env_of(reviews["remove-protect"], "prod")
    assert [(s.path, s.old, s.new) for s in prod.settings] == [("protect", True, False)]
    removed = [f for f in prod.flags if f.kind == "protection-removed"]
    assert any(f.entity == "protect" for f in removed)
    assert any(f.resource.endswith("bucket") for f in removed), "the buckets lose their protection"


def test_removing_a_monitor_is_flagged(reviews):
    dev = env_of(reviews["remove-monitor"], "dev")
    # the explicit error monitor goes; default_monitors adds the default one in its place
    assert [(c.name, c.action) for c in dev.entities if c.kind == "monitors"] == [
        ("ranker-error-rate", "added"), ("ranker-errors", "removed")]
    assert actions(dev, ALARM) == ["create", "delete"]
    assert [f.entity for f in dev.flags if f.kind == "monitor-removed"] == ["monitors.ranker-errors"]


def test_lowering_instances_is_a_capacity_reset(reviews):
    prod = env_of(reviews["lower-capacity"], "prod")
    assert [f.reason for f in prod.flags if f.kind == "capacity-reset"] == ["instances lowered from 2 to 1"]
    # prod runs one instance now: the advisory policy says so
    assert any(f.policy == "prod-min-instances" and f.level == "advisory" for f in prod.new_findings)


def test_unbuilt_artifacts_are_placeholders_and_said_so(reviews):
    report = reviews["instance-type"]
    assert env_of(report, "dev").unbuilt == ["ranker"]
    assert "(artifact not built)" in to_markdown(report) and "(artifact not built)" in to_text(report)


def test_markdown_and_json_carry_the_same_review(reviews):
    report = reviews["remove-dataset"]
    md = to_markdown(report)
    assert md.startswith("<!-- modelops-review -->") and "**DATA LOSS**" in md
    assert "<details>" in md and "```mermaid" in md and "flowchart LR" in md
    data = json.loads(report.to_json())
    [dev] = data["environments"]
    assert dev["flags"][0]["label"] in md and data["summary"] == report.summary_lines()
    assert {"before", "after", "delta"} <= set(dev["cost"])


def test_webhook_urls_are_never_printed(reviews):
    report = reviews["add-webhook"]
    dev = env_of(report, "dev")
    [change] = [c for c in dev.entities if c.kind == "channels"]
    assert change.fields[0].path == "https" and str(change.fields[0].new[0]).startswith("https://**** (#")
    assert any(r.type == "aws:sns/topicSubscription:TopicSubscription" and r.action == "create" for r in dev.resources)
    for text in (to_text(report), to_markdown(report), report.to_json()):
        assert "SECRET-WEBHOOK-TOKEN" not in text and "hooks.example.com" not in text
