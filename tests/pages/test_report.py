"""``modelops report`` as a user runs it: the page of a monitor from its job results in S3.

The results are written in the results contract by tests.pages.helpers (the monitor job's
stand-in) into the dataset bucket of the churn dev environment ``up`` provisioned.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.pages.report import render_report
from modelops.pages.results import Location, location
from tests.pages.helpers import Deployed, data_quality_result, drift_result, hourly, publish, quality_result

pytestmark = [pytest.mark.aws, pytest.mark.slow]

MODELOPS = [sys.executable, "-m", "modelops"]
#: anything a browser could fetch: a URL with a scheme or protocol-relative, an import, a script or link
EXTERNAL = re.compile(r"""https?://|(?:src|href|action)\s*=\s*(?!["']?#)|url\((?!#)|@import|<script|<link|<iframe|<object""",
                      re.I)


def report(deployed: Deployed, monitor: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MODELOPS, "report", monitor, str(deployed.spec), "--env", "dev", "--endpoint-url",
                           deployed.emulator.url, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "AWS_CA_BUNDLE": deployed.emulator.ca_bundle},
                          cwd=deployed.spec.parent, check=False)


def features_in_page(html: str) -> list[str]:
    return re.findall(r'<section class="feature[^"]*" data-feature="([^"]+)"', html)


def test_a_drift_report_shows_every_feature_by_score(deployed: Deployed, tmp_path: Path) -> None:
    # GIVEN six hourly drift runs, drifting more each hour
    where = location(deployed.env, "churn-drift", deployed.account)
    runs = [drift_result(where, shift=i / 8, when=w, seed=i) for i, w in enumerate(hourly(6))]
    publish(deployed.emulator.client("s3"), where, runs)
    out = tmp_path / "drift.html"
    # WHEN the report is rendered
    done = report(deployed, "churn-drift", "--out", str(out), "--json")
    # THEN it is written and says what from
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary == {"monitor": "churn-drift", "results": 6, "computed_at": runs[-1]["computed_at"],
                       "verdict": runs[-1]["verdict"], "bytes": out.stat().st_size, "out": str(out)}
    html = out.read_text()
    latest = runs[-1]
    # AND every feature is there, sorted by score, with its test, score and threshold beside its chart
    by_score = [f["name"] for f in sorted(latest["features"], key=lambda f: -f["score"])]
    assert features_in_page(html) == by_score
    for feature in latest["features"]:
        section = html.split(f'data-feature="{feature["name"]}"', 1)[1].split("</section>", 1)[0]
        assert f"test <b>{feature['test']}</b>" in section and "threshold 0.2" in section
        assert f"score <b>{feature['score']:.4g}</b>" in section
        assert '<figure class="chart" data-feature="' in html and "<svg" in section
    # AND when, from which data, and the sample sizes
    assert latest["computed_at"] in html and latest["inputs"]["capture"] in html
    assert "<b>2000</b>" in html and "<b>812</b>" in html
    assert "Over time (6 runs)" in html and html.count("<tr><td>2026-11-30T") == 6


def test_the_page_needs_no_network(deployed: Deployed, tmp_path: Path) -> None:
    where = location(deployed.env, "churn-drift", deployed.account)
    publish(deployed.emulator.client("s3"), where, [drift_result(where)])
    out = tmp_path / "drift.html"
    assert report(deployed, "churn-drift", "--out", str(out)).returncode == 0
    html = out.read_text()
    # THEN nothing in it can be fetched: no URL, no script, no stylesheet or font from elsewhere
    assert EXTERNAL.findall(html) == []
    # AND the browser is told to fetch nothing, should anything try
    assert "Content-Security-Policy\" content=\"default-src 'none'" in html
    # (the check itself catches what it must)
    assert EXTERNAL.search('<img src="x.png">') and EXTERNAL.search("<style>@import 'a.css'</style>")
    assert EXTERNAL.search("background: url(https://a/b)") and not EXTERNAL.search('clip-path="url(#p1)"')
    assert EXTERNAL.search('<a href="//cdn.example/x">') and not EXTERNAL.search('<use xlink:href="#m1"/>')


def test_a_hundred_features_stay_under_two_megabytes() -> None:
    where = Location("churn-dev-customers-123456789012", "wide-drift")
    runs = [drift_result(where, shift=i / 10, when=w, extra_features=95) for i, w in enumerate(hourly(24))]
    made = render_report(runs[-1], runs)
    assert len(features_in_page(made.html)) == 100
    assert made.to_dict()["bytes"] < 2 * 1024 * 1024, made.to_dict()["bytes"]


def test_model_quality_over_time_with_its_threshold(deployed: Deployed, tmp_path: Path) -> None:
    where = location(deployed.env, "churn-drift", deployed.account)
    accuracies = [0.91, 0.88, 0.86, 0.83, 0.79, 0.76]
    publish(deployed.emulator.client("s3"), where,
            [quality_result(where, a, when=w) for a, w in zip(accuracies, hourly(6, hourly(10)[-1]))])
    out = tmp_path / "quality.html"
    assert report(deployed, "churn-drift", "--out", str(out)).returncode == 0
    html = out.read_text()
    assert "Model quality over time (" in html
    chart = html.split('data-chart="history">', 1)[1].split("</figure>", 1)[0]
    # THEN the chart draws accuracy with the threshold line and the alarming runs, labelled in text
    assert "threshold 0.8" in chart and ">accuracy<" in chart and ">alarm<" in chart
    runs = html.split('<table class="runs">', 1)[1].split("</table>", 1)[0]
    assert "<th>labelled</th>" in runs and "<td>0.76</td>" in runs and "<td>640</td>" in runs


def test_data_quality_violations_with_their_examples(deployed: Deployed, tmp_path: Path) -> None:
    where = location(deployed.env, "churn-drift", deployed.account)
    publish(deployed.emulator.client("s3"), where, [data_quality_result(where, when=hourly(30)[-1])])
    out = tmp_path / "quality.html"
    assert report(deployed, "churn-drift", "--out", str(out)).returncode == 0
    html = out.read_text()
    table = html.split('<table class="violations">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td>", table)
    assert rows == [("monthly_charges", "out of range", "12"), ("contract", "unseen category", "3")]
    # AND examples are shown as text, escaped, never as markup
    assert "<code>-4.0</code>, <code>99999</code>" in table and "<code>&lt;weekly&gt;</code>" in table


@pytest.mark.parametrize(("monitor", "message"), [
    ("churn-latency", "no result of monitor churn-latency yet; run its job first: modelops monitor run churn-latency --env dev"),
    ("customers-fresh", "monitor 'customers-fresh' watches dataset customers (freshness)"),
    ("churn-drfit", "monitor 'churn-drfit' is not declared"),
])
def test_what_cannot_be_reported_is_one_line_exit_2(deployed: Deployed, monitor: str, message: str) -> None:
    done = report(deployed, monitor)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_result_that_is_not_the_contract_is_refused(deployed: Deployed, tmp_path: Path) -> None:
    where = location(deployed.env, "churn-drift", deployed.account)
    s3 = deployed.emulator.client("s3")
    s3.put_object(Bucket=where.bucket, Key=where.latest_key, Body=json.dumps({"schema": "other/v9"}).encode())
    done = report(deployed, "churn-drift", "--out", str(tmp_path / "x.html"))
    assert done.returncode == 2
    assert f"s3://{where.bucket}/monitoring/churn-drift/latest.json: schema 'other/v9'" in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_the_docs_show_a_report_made_by_the_test_tooling() -> None:
    from PIL import Image

    from tests.helpers import ROOT
    from tests.pages.docs_images import REPORT_IMAGE

    text = (ROOT / "docs" / "monitoring.md").read_text()
    assert "## Reading a report" in text and "## Status" in text
    assert f"](images/{REPORT_IMAGE.name})" in text
    with Image.open(REPORT_IMAGE) as image:
        assert image.format == "PNG" and image.size[0] == 1280 and image.size[1] > 900
