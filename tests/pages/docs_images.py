"""Make the screenshots docs/ shows, with the page tests' own tooling.

    .venv/bin/python -m tests.pages.docs_images

writes ``docs/images/monitor-report.png``: the report of six hourly drift runs of the churn
example (tests.pages.helpers' results, the job's stand-in) as headless chromium draws it at
1280 px wide. Run it again when the page changes, and commit the image.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from modelops.pages.report import render_report
from modelops.pages.results import Location
from tests.helpers import ROOT
from tests.pages.helpers import Browser, drift_result, hourly

IMAGES = ROOT / "docs" / "images"
REPORT_IMAGE = IMAGES / "monitor-report.png"


def sample_report() -> str:
    """The page of six hourly churn-drift runs, drifting more each hour."""
    where = Location("churn-dev-customers-123456789012", "churn-drift")
    runs = [drift_result(where, shift=i / 8, when=w, seed=i) for i, w in enumerate(hourly(6))]
    return render_report(runs[-1], runs, where.uri(where.latest_key)).html


def report_screenshot(width: int = 1280, height: int = 1500) -> bytes:
    with tempfile.TemporaryDirectory() as tmp, Browser(width, height) as browser:
        page = Path(tmp) / "report.html"
        page.write_text(sample_report())
        browser.open(page)
        return browser.screenshot(full_page=True)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    REPORT_IMAGE.write_bytes(report_screenshot())
    print(f"wrote {REPORT_IMAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
