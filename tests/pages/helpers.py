"""Helpers of the page tests (tests/pages/): monitor job results in the results contract, in S3.

The monitor job (issue 25) writes results as docs/monitoring.md ("Job results") says; until
the page tests can run that job, :func:`publish` writes results of exactly that format where
the job writes them, built by :func:`drift_result`, :func:`quality_result` and
:func:`data_quality_result` from the churn example's data with shifted values. This module
is the one place to replace with a run of the real job.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from modelops.pages.results import SCHEMA, Location
from modelops.spec.resolved import Environment
from tests.helpers import ROOT, Emulator

CHURN_DATA = ROOT / "examples" / "churn" / "data" / "customers.csv"
NUMERIC = ("tenure_months", "monthly_charges", "support_calls")
CATEGORICAL = ("contract", "payment_method")
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Deployed:
    """A private copy of the churn project whose dev environment ``up`` provisioned to ``emulator``."""

    spec: Path
    env: Environment
    emulator: Emulator
    account: str = "123456789012"


def churn_columns() -> dict[str, list[str]]:
    with CHURN_DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: [row[name] for row in rows] for name in rows[0]}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _psi(base: np.ndarray, cur: np.ndarray) -> float:
    b = np.clip(base / max(base.sum(), 1), 1e-4, None)
    c = np.clip(cur / max(cur.sum(), 1), 1e-4, None)
    return float(np.sum((c - b) * np.log(c / b)))


def _numeric(name: str, values: np.ndarray, shift: float, rng: np.random.Generator, current_rows: int) -> dict[str, Any]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
    base, _ = np.histogram(values, bins=edges)
    live = rng.choice(values, size=current_rows) + shift * values.std()
    cur, _ = np.histogram(np.clip(live, edges[0], edges[-1]), bins=edges)
    score = round(_psi(base, cur), 4)
    return {"name": name, "type": "numeric", "test": "psi", "score": score, "threshold": 0.2,
            "drifted": score > 0.2, "edges": [round(float(e), 4) for e in edges], "categories": None,
            "baseline_counts": [int(x) for x in base], "current_counts": [int(x) for x in cur]}


def _categorical(name: str, values: list[str], shift: float, rng: np.random.Generator, current_rows: int) -> dict[str, Any]:
    cats = sorted(set(values))
    base = np.array([values.count(c) for c in cats])
    weights = base / base.sum()
    weights = weights * np.exp(shift * np.linspace(-1, 1, len(cats)))
    cur = rng.multinomial(current_rows, weights / weights.sum())
    score = round(_psi(base, cur), 4)
    return {"name": name, "type": "categorical", "test": "chi2", "score": score, "threshold": 0.2,
            "drifted": score > 0.2, "edges": None, "categories": cats,
            "baseline_counts": [int(x) for x in base], "current_counts": [int(x) for x in cur]}


def _common(where: Location, model: str, env: str, metric: str, when: datetime, current: int) -> dict[str, Any]:
    bucket = where.bucket
    return {
        "schema": SCHEMA, "monitor": where.monitor, "model": model, "env": env, "metric": metric,
        "computed_at": _iso(when),
        "inputs": {"capture": f"s3://{bucket}/capture/{model}/", "baseline": f"s3://{bucket}/baseline/{model}/baseline.json",
                   "labels": None, "shards": 1, "window_start": _iso(when - timedelta(hours=1)), "window_end": _iso(when)},
        "sample_size": {"baseline": 2000, "current": current},
    }


def drift_result(where: Location, *, model: str = "churn-classifier", env: str = "dev", shift: float = 0.6,
                 when: datetime = START, extra_features: int = 0, current: int = 812, seed: int = 0) -> dict[str, Any]:
    """A data_drift result: the churn features against their own data shifted by ``shift`` standard
    deviations (numeric) or re-weighted (categorical); ``extra_features`` synthetic numeric ones more."""
    rng = np.random.default_rng(seed)
    columns = churn_columns()
    features = [_numeric(n, np.array(columns[n], dtype=float), shift, rng, current) for n in NUMERIC]
    features += [_categorical(n, columns[n], shift, rng, current) for n in CATEGORICAL]
    for i in range(extra_features):
        values = rng.normal(50 + i, 10, size=2000)
        features.append(_numeric(f"feature_{i:03d}", values, shift * (i % 7) / 6, rng, current))
    value = max(f["score"] for f in features)
    return {**_common(where, model, env, "data_drift", when, current), "value": value, "threshold": 0.2,
            "verdict": "alarm" if value > 0.2 else "ok", "features": features, "violations": [], "quality": None}


def data_quality_result(where: Location, *, model: str = "churn-classifier", env: str = "dev",
                        when: datetime = START) -> dict[str, Any]:
    """A data_quality result with two violations (one with a secret-looking value the job never writes)."""
    violations = [
        {"feature": "monthly_charges", "kind": "out_of_range", "count": 12, "share": 0.015, "examples": ["-4.0", "99999"]},
        {"feature": "contract", "kind": "unseen_category", "count": 3, "share": 0.0037, "examples": ["<weekly>"]},
    ]
    return {**_common(where, model, env, "data_quality", when, 812), "value": 0.015, "threshold": 0.01,
            "verdict": "alarm", "features": [], "violations": violations, "quality": None}


def quality_result(where: Location, accuracy: float, *, model: str = "churn-classifier", env: str = "dev",
                   when: datetime = START) -> dict[str, Any]:
    """A model_quality result: accuracy on labelled captured traffic, alarming below 0.8."""
    return {**_common(where, model, env, "model_quality", when, 640), "value": accuracy, "threshold": 0.8,
            "verdict": "alarm" if accuracy < 0.8 else "ok", "features": [], "violations": [],
            "quality": {"name": "accuracy", "value": accuracy, "labelled": 640, "direction": "below"}}


def publish(s3: Any, where: Location, results: list[dict[str, Any]]) -> list[str]:
    """Write ``results`` as the job does: one object per run under results/, the newest as latest.json."""
    keys = []
    for result in results:
        stamp = result["computed_at"].replace(":", "-")
        key = f"{where.results_prefix}{stamp}.json"
        s3.put_object(Bucket=where.bucket, Key=key, Body=json.dumps(result).encode(), ContentType="application/json")
        keys.append(key)
    newest = max(results, key=lambda r: r["computed_at"])
    s3.put_object(Bucket=where.bucket, Key=where.latest_key, Body=json.dumps(newest).encode(),
                  ContentType="application/json")
    return keys


def hourly(count: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(count)]


# --------------------------------------------------------------------------- the browser

#: Debian's chromium (``make test`` installs it where missing); no browser is downloaded
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: what the tests skip with when there is none, saying how to get it
NO_CHROMIUM = "Debian's chromium is not installed: `make test` installs it as root (apt-get install -y chromium)"
#: one CDP call or wait at most
CDP_TIMEOUT = 60.0


class Browser:
    """Headless Debian chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

    No client library and no port: chromium reads commands on fd 3 and answers on fd 4, as
    NUL-terminated JSON. Every fetch other than the page's own file is refused by a proxy
    that does not exist, and chromium's own background traffic is switched off.

    Example::

        with Browser() as browser:
            browser.open(Path("report.html"))
            browser.evaluate("document.title")
    """

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="modelops-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child: the two pipe ends on the fds chromium expects
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "--hide-scrollbars",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--no-pings",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--force-device-scale-factor=1",
             "about:blank"],
            pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=wire,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("chromium did not answer within the time limit")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise ConnectionError("chromium closed the debugging pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False) -> dict[str, Any]:
        """Send one CDP command (to the page's session with ``session``) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + CDP_TIMEOUT
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + CDP_TIMEOUT
        for seen in self.events:
            if seen["method"] == event:
                self.events.remove(seen)
                return seen
        while True:
            answer = self._message(deadline)
            if answer.get("method") == event:
                return answer
            if "method" in answer:
                self.events.append(answer)

    def open(self, page: Path) -> None:
        """Load a local page and wait until it has loaded."""
        self.events.clear()
        self.call("Page.navigate", {"url": page.resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")

    def requests(self) -> list[str]:
        """URLs the page asked for since it was opened (its own file included)."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (returned by value)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, full_page: bool = False) -> bytes:
        """A PNG of the viewport, or of the whole page at the viewport's width."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = int(self.evaluate("document.documentElement.scrollHeight"))
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1})
        return base64.b64decode(self.call("Page.captureScreenshot", params, session=True)["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, TimeoutError, ConnectionError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
