"""The PR comment: summary first, details folded, always under GitHub's comment size limit."""

from __future__ import annotations

from modelops.review.formats import MARKDOWN_LIMIT, md_env, to_markdown, to_text
from modelops.review.report import DiffReport, EntityChange, EnvDiff, FieldChange, Flag, ResourceChange

TYPES = ("aws:sagemaker/model:Model", "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:iam/rolePolicy:RolePolicy")


def huge_report(models: int) -> DiffReport:
    report = DiffReport(spec="modelops.yaml", base="origin/main", head="working tree")
    for env in ("dev", "staging", "prod"):
        e = EnvDiff(env=env, status="changed")
        for i in range(models):
            name = f"model-{i:04d}"
            e.entities.append(EntityChange("models", name, "added", (FieldChange("serving.instance_type", None, "ml.m5.large"),)))
            for t in TYPES:
                e.resources.append(ResourceChange(f"urn:pulumi:{env}::p::{t}::{name}", t, f"p-{env}-{name}", "create", f"models.{name}"))
        e.flags.append(Flag("data-loss", "datasets.orders", "urn:x", "storage orders is deleted: its objects are gone"))
        report.envs.append(e)
    return report


def test_huge_change_stays_under_64kb_and_keeps_the_summary():
    report = huge_report(2000)
    full = "\n".join(
        md_env(e) for e in report.envs
    )
    assert len(full.encode()) > MARKDOWN_LIMIT, "the case must really be too big"
    md = to_markdown(report)
    assert len(md.encode()) <= MARKDOWN_LIMIT
    for line in report.summary_lines():
        assert line.split(":", 1)[1] in md
    assert "**DATA LOSS**" in md
    assert "cut to fit the comment size limit" in md
    assert md.startswith("<!-- modelops-review -->")


def test_small_change_keeps_every_section():
    md = to_markdown(huge_report(3))
    assert md.count("<details>") == 3 and "cut to fit" not in md


def test_nothing_changed_is_one_line():
    report = DiffReport(spec="modelops.yaml", base="origin/main", head="working tree",
                        envs=[EnvDiff(env="dev", status="unchanged")])
    assert to_markdown(report).strip().splitlines() == ["<!-- modelops-review -->",
                                                         "modelops diff: no changes (origin/main → working tree)"]
    assert to_text(report) == "modelops diff: no changes (origin/main → working tree)"
    assert report.failed_conditions(["any", "data-loss", "cost>0"]) == []
