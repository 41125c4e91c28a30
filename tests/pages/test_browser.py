"""The pages as a person sees them: rendered by headless Debian chromium at 1280 px wide.

Each test opens a page ModelOps wrote and asserts on what is drawn: a screenshot of the
expected size that is not blank, every chart laid out with its feature name, nothing wider
than the window, and no request but the page's own file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from modelops.pages.report import render_report
from modelops.pages.results import Location
from tests.pages.helpers import CHROMIUM, NO_CHROMIUM, Browser, Deployed, data_quality_result, drift_result, hourly

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)]

WIDTH, HEIGHT = 1280, 900
WHERE = Location("churn-dev-customers-123456789012", "churn-drift")

#: per chart of the page: its feature, the drawn size of its SVG, and the text drawn in it
CHARTS_JS = """[...document.querySelectorAll('figure.chart[data-feature]')].map(f => {
  const svg = f.querySelector('svg'); const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const card = f.closest('section');
  return {feature: f.dataset.feature, width: box.width, height: box.height,
          text: svg ? svg.textContent : '', heading: card ? card.querySelector('h3').innerText : '',
          right: card ? card.getBoundingClientRect().right : 0};
})"""
OVERFLOW_JS = "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(WIDTH, HEIGHT) as opened:
        yield opened


def not_blank(png: bytes) -> tuple[tuple[int, int], float, int]:
    """(size, share of pixels that are not background white, distinct colours) of a PNG."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = list(image.get_flattened_data())
    inked = sum(1 for p in pixels if p != (255, 255, 255)) / len(pixels)
    return image.size, inked, len(set(pixels))


def assert_fits(browser: Browser) -> None:
    document, body, window = browser.evaluate(OVERFLOW_JS)
    assert window == WIDTH and document <= WIDTH and body <= WIDTH, (document, body, window)


def write(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html)
    return path


def test_a_drift_report_shows_every_chart_with_its_feature(browser: Browser, tmp_path: Path) -> None:
    runs = [drift_result(WHERE, shift=i / 8, when=w, seed=i) for i, w in enumerate(hourly(6))]
    page = write(tmp_path, "drift.html", render_report(runs[-1], runs).html)
    # WHEN a person opens the report at 1280 px
    browser.open(page)
    # THEN the screenshot has the window's size and shows something: text, bars, colours
    size, inked, colours = not_blank(browser.screenshot())
    assert size == (WIDTH, HEIGHT)
    assert inked > 0.05 and colours > 50, (inked, colours)
    # AND every feature's chart is laid out, drawn with its name, beside its heading
    charts = browser.evaluate(CHARTS_JS)
    assert sorted(c["feature"] for c in charts) == sorted(f["name"] for f in runs[-1]["features"])
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 100, chart
        assert chart["feature"] in chart["text"] and "baseline" in chart["text"] and "current" in chart["text"]
        assert chart["heading"].startswith(chart["feature"]) and chart["right"] <= WIDTH
    # AND the history chart is drawn with its threshold line
    history = browser.evaluate("document.querySelector('figure[data-chart=history] svg').textContent")
    assert "threshold 0.2" in history
    # AND nothing overflows the window, and nothing was fetched but the page itself
    assert_fits(browser)
    assert browser.requests() == [page.resolve().as_uri()]


def test_a_hundred_features_fit_the_window(browser: Browser, tmp_path: Path) -> None:
    runs = [drift_result(WHERE, shift=i / 10, when=w, extra_features=95) for i, w in enumerate(hourly(24))]
    page = write(tmp_path, "wide.html", render_report(runs[-1], runs).html)
    browser.open(page)
    charts = browser.evaluate(CHARTS_JS)
    assert len(charts) == 100 and all(c["width"] > 200 and c["height"] > 100 for c in charts)
    assert all(c["feature"] in c["text"] for c in charts)
    assert_fits(browser)
    # AND the whole page, 34 rows of three charts, is drawn at the window's width
    height = browser.evaluate("document.documentElement.scrollHeight")
    size, inked, _ = not_blank(browser.screenshot(full_page=True))
    assert size == (WIDTH, height) and height > 10 * HEIGHT and inked > 0.05


def test_violations_and_long_examples_stay_inside_the_window(browser: Browser, tmp_path: Path) -> None:
    result = data_quality_result(WHERE)
    result["violations"][0]["examples"] = ["9" * 400, "x" * 200]  # one unbroken example wider than the page
    page = write(tmp_path, "quality.html", render_report(result, [result]).html)
    browser.open(page)
    assert_fits(browser)
    rows = browser.evaluate("[...document.querySelectorAll('table.violations tbody tr')].map(r => r.innerText)")
    assert len(rows) == 2 and rows[0].startswith("monthly_charges")


@pytest.mark.aws
def test_the_status_page_calls_out_a_difference(browser: Browser, deployed: Deployed, tmp_path: Path) -> None:
    sm = deployed.emulator.client("sagemaker")
    endpoint = "churn-dev-churn-classifier"
    sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredWeight": 0.5}])
    page = tmp_path / "status.html"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "modelops", "status", str(deployed.spec), "--env", "dev", "--endpoint-url",
             deployed.emulator.url, "--html", str(page), "--json"], capture_output=True, text=True, timeout=300,
            env={**os.environ, "AWS_CA_BUNDLE": deployed.emulator.ca_bundle}, check=False)
    finally:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredWeight": 1.0}])
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["differences"]) == 1
    browser.open(page)
    listed = browser.evaluate("[...document.querySelectorAll('ul.differences li')].map(li => li.innerText)")
    assert len(listed) == 1 and "variant primary weight 0.5, spec 1" in listed[0]
    colour = browser.evaluate("getComputedStyle(document.querySelector('ul.differences li')).color")
    assert colour == "rgb(207, 34, 46)"  # drawn in the alarm red
    variants = browser.evaluate("document.querySelector('table.variants').innerText")
    assert "primary" in variants and "0.5" in variants
    assert_fits(browser)
    size, inked, _ = not_blank(browser.screenshot())
    assert size == (WIDTH, HEIGHT) and inked > 0.02


def test_the_overflow_check_sees_a_page_wider_than_the_window(browser: Browser, tmp_path: Path) -> None:
    page = write(tmp_path, "wide.html", '<!doctype html><body><div style="width:2000px">wide</div></body>')
    browser.open(page)
    with pytest.raises(AssertionError):
        assert_fits(browser)
