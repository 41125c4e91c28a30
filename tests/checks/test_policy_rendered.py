"""Policies on graphs the components really render, and through ``modelops validate``."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelops.graph.cache import render_graph
from modelops.ml.placeholders import attach_without_training
from modelops.spec.envs import load_environment
from modelops.checks.pipeline import check_policies
from modelops.checks.policy import evaluate
from tests.review.helpers import BASE, cli


def rendered(spec: Path, env: str, tmp: Path):
    attached, _ = attach_without_training(load_environment(spec, env), tmp, tmp)
    return attached, render_graph(attached)


def test_default_spec_renders_with_no_mandatory_findings(tmp_path):
    # GIVEN the secure-by-default components WHEN the base fixture renders THEN every mandatory policy holds
    for env in ("dev", "prod"):
        attached, graph = rendered(BASE / "modelops.yaml", env, tmp_path)
        assert [f for f in evaluate(attached, graph) if f.level == "mandatory"] == []


def test_sse_s3_fails_endpoint_encryption_and_names_the_file(tmp_path):
    shutil.copytree(BASE, tmp_path / "spec")
    spec = tmp_path / "spec" / "modelops.yaml"
    spec.write_text(spec.read_text().replace("region: us-east-1\n", "region: us-east-1\nencryption: sse-s3\n"))
    problems = check_policies({"dev": load_environment(spec, "dev")})
    assert problems and {p.code for p in problems} == {"P-endpoint-encrypted"}
    assert all(p.path == "models.ranker" and p.file.endswith("modelops.yaml") and p.line > 0 for p in problems)


def test_validate_exits_2_on_a_mandatory_policy_with_one_line_each(tmp_path):
    shutil.copytree(BASE, tmp_path / "spec")
    spec = tmp_path / "spec" / "modelops.yaml"
    spec.write_text(spec.read_text().replace(
        "region: us-east-1\n", "region: us-east-1\npolicies: {prod-min-instances: mandatory}\n"))
    prod = tmp_path / "spec" / "stacks" / "prod.yaml"
    prod.write_text(prod.read_text().replace("instance_count: 2", "instance_count: 1"))
    result = cli("validate", "modelops.yaml", "--env", "prod", cwd=tmp_path / "spec")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("stacks/prod.yaml:") and "models.ranker" in line and "[prod-min-instances]" in line
