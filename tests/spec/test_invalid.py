"""The invalid-spec corpus: every class of mistake gives its exact message and position.

Each ``tests/fixtures/specs/invalid/<name>.expected`` holds the exact stderr lines of
``modelops validate`` for ``<name>.yaml`` (or ``<name>/modelops.yaml`` with its own
``stacks/``), run from that directory.
"""

from __future__ import annotations

import json

import pytest

from modelops.spec.envs import validate
from tests.spec.helpers import INVALID, expected_lines, invalid_cases, invalid_spec, run_cli

CASES = invalid_cases()
#: one of each kind of failure, run end to end through a subprocess
CLI_CASES = [
    "yaml-bad-indentation",
    "duplicate-key-nested",
    "wrong-type-instance-count",
    "unknown-key-serving",
    "dangling-notify",
    "serverless-drift-monitor",
    "overlay-undeclared-model",
    "overlay-region-mismatch",
    "alias-bomb",
    "binary-file",
    "non-utf8",
    "top-level-list",
    "estimator-not-a-predictor",
    "size-limits",
]


def test_corpus_is_large_and_complete():
    # GIVEN the corpus THEN it covers at least 40 specs, each with its expected lines
    assert len(CASES) >= 40
    for name in CASES:
        assert expected_lines(name), name
        assert (INVALID / invalid_spec(name)).exists(), name
    assert set(CLI_CASES) <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_library_reports_exact_problems(name, monkeypatch):
    # GIVEN an invalid spec, WHEN validated from its directory
    monkeypatch.chdir(INVALID)
    problems = validate(invalid_spec(name))
    # THEN every expected problem, and only those, in file order
    assert [str(p) for p in problems] == expected_lines(name)
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_exits_2_with_exact_lines(name):
    result = run_cli("validate", invalid_spec(name), cwd=INVALID)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == expected_lines(name)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_json_lists_the_problems_on_stdout():
    result = run_cli("validate", "unknown-key-top.yaml", "--json", cwd=INVALID)
    assert result.returncode == 2
    import json

    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [(p["line"], p["column"], p["path"], p["code"]) for p in report["problems"]] == [
        (1, 1, "region", "E-SCHEMA-REQUIRED"),
        (4, 1, "regoin", "E-SCHEMA-UNKNOWN-KEY"),
    ]
    assert report["problems"][1]["fix"] == "did you mean 'region'?"


def test_https_urls_never_appear_in_messages():
    lines = expected_lines("bad-https-url")
    assert lines and not any("hooks.example.com" in line or "secret-token" in line for line in lines)


def test_serving_instance_types_are_the_sagemaker_apis_and_cover_the_price_file():
    # GIVEN the table validation reads, and the SageMaker API model of the installed botocore
    import gzip
    from pathlib import Path

    import botocore

    from modelops.review.cost import prices
    from modelops.spec.model_rules import serving_instance_types

    model = next((Path(botocore.__file__).parent / "data" / "sagemaker").glob("*/service-2.json.gz"))
    api = json.loads(gzip.decompress(model.read_bytes()))["shapes"]["ProductionVariantInstanceType"]["enum"]
    # THEN the table is that list, and every type the schema defaults to or we price is in it
    assert list(serving_instance_types()) == api
    priced = {t for region in prices()["sagemaker_realtime_hourly"].values() for t in region["prices"]}
    assert "ml.m5.large" in api and priced <= set(api)
