"""A monitor report: one self-contained HTML page from the job's results in S3.

The page is rendered from the JSON results alone (the latest and the history under
``monitoring/<monitor>/results/``), so it looks the same whether the job ran locally or in
AWS. It shows, newest first: the verdict with its value against the threshold, the sample
sizes, when and from which data the result was computed; the value over time with the
threshold line (model quality, for a quality monitor); per feature the baseline and
current distributions on one chart with its test, score and threshold, sorted by score;
the data-quality violations with their examples.

Example::

    html = render_report(latest, history)
    Path("churn-drift.html").write_text(html)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelops.errors import UsageError
from modelops.pages import results
from modelops.pages.charts import distribution_svg, history_svg
from modelops.pages.html import esc, page
from modelops.spec.resolved import Environment

#: rows of the run table under the history chart (the chart draws every run)
HISTORY_ROWS = 20


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` made: the page and what it was made from."""

    html: str
    monitor: str
    results: int
    computed_at: str
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "results": self.results, "computed_at": self.computed_at,
                "verdict": self.verdict, "bytes": len(self.html.encode("utf-8"))}


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _badge(verdict: str) -> str:
    return f'<span class="badge {esc(verdict)}">{esc(verdict.replace("_", " "))}</span>'


def _header(latest: dict[str, Any], source: str) -> str:
    inputs = latest.get("inputs") or {}
    sizes = latest.get("sample_size") or {}
    quality = latest.get("quality") or {}
    value_name = quality.get("name") or latest["metric"].replace("_", " ")
    rows = [
        ("computed at", latest["computed_at"]),
        ("window", f"{inputs.get('window_start', '-')} to {inputs.get('window_end', '-')}"),
        ("captured data", inputs.get("capture")),
        ("baseline", inputs.get("baseline")),
        ("labels", inputs.get("labels") or "none"),
        ("shards", inputs.get("shards")),
        ("result", source),
    ]
    facts = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in rows)
    summary = (
        f'<div><span class="muted">verdict</span><b>{_badge(latest["verdict"])}</b></div>'
        f'<div><span class="muted">{esc(value_name)}</span><b>{esc(_num(latest.get("value")))}</b>'
        f'<span class="muted">threshold {esc(_num(latest.get("threshold")))}</span></div>'
        f'<div><span class="muted">baseline rows</span><b>{esc(sizes.get("baseline", "-"))}</b></div>'
        f'<div><span class="muted">current rows</span><b>{esc(sizes.get("current", "-"))}</b></div>'
    )
    features = latest.get("features") or []
    if features:
        drifted = sum(1 for f in features if f.get("drifted"))
        summary += f'<div><span class="muted">features drifted</span><b>{drifted} of {len(features)}</b></div>'
    title = (f'<h1>{esc(latest["monitor"])}: {esc(latest["metric"])} of {esc(latest.get("model", "-"))} '
             f'on {esc(latest.get("env", "-"))}</h1>')
    return f'{title}<div class="summary">{summary}</div><table class="facts">{facts}</table>'


def _history(latest: dict[str, Any], history: list[dict[str, Any]]) -> str:
    runs = history or [latest]
    quality = latest.get("quality") or {}
    ylabel = quality.get("name") or ("largest feature score" if latest.get("features") else "value")
    values = [r.get("quality", {}).get("value") if r.get("quality") else r.get("value") for r in runs]
    chart = history_svg(latest["monitor"], [r["computed_at"] for r in runs], values, latest.get("threshold"),
                        [r["verdict"] == "alarm" for r in runs], ylabel)
    title = "Model quality over time" if quality else "Over time"
    rows = "".join(
        f"<tr><td>{esc(r['computed_at'])}</td><td>{_badge(r['verdict'])}</td><td>{esc(_num(v))}</td>"
        f"<td>{esc(_num(r.get('threshold')))}</td><td>{esc((r.get('sample_size') or {}).get('current', '-'))}</td>"
        + (f"<td>{esc((r.get('quality') or {}).get('labelled', '-'))}</td>" if quality else "") + "</tr>"
        for r, v in list(zip(runs, values))[::-1][:HISTORY_ROWS]
    )
    labelled = "<th>labelled</th>" if quality else ""
    return (
        f'<h2 id="history">{title} ({len(runs)} run{"s" if len(runs) != 1 else ""})</h2>'
        f'<figure class="chart history" data-chart="history">{chart}</figure>'
        f"<table class=\"runs\"><thead><tr><th>computed at</th><th>verdict</th><th>{esc(ylabel)}</th>"
        f"<th>threshold</th><th>current rows</th>{labelled}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _features(features: list[dict[str, Any]]) -> str:
    ordered = sorted(features, key=lambda f: (-(f.get("score") or 0.0), f["name"]))
    cards = []
    for feature in ordered:
        chart = distribution_svg(
            feature["name"], feature.get("type", "numeric"), feature.get("edges"),
            feature.get("baseline_counts") or [], feature.get("current_counts") or [], feature.get("categories"),
        )
        drifted = bool(feature.get("drifted"))
        verdict = "alarm" if drifted else "ok"
        cards.append(
            f'<section class="feature{" drifted" if drifted else ""}" data-feature="{esc(feature["name"])}">'
            f'<h3>{esc(feature["name"])} <span class="badge {verdict}">{"drifted" if drifted else "ok"}</span></h3>'
            f'<p class="meta">{esc(feature.get("type", "-"))}; test <b>{esc(feature.get("test", "-"))}</b>, '
            f'score <b>{esc(_num(feature.get("score")))}</b>, threshold {esc(_num(feature.get("threshold")))}</p>'
            f'<figure class="chart" data-feature="{esc(feature["name"])}">{chart}</figure></section>'
        )
    return (f'<h2 id="features">Features by score ({len(ordered)})</h2>'
            f'<p class="muted">Grey: the training baseline; blue: the captured traffic; as shares of their rows.</p>'
            f'<div class="features">{"".join(cards)}</div>')


def _violations(violations: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(v.get('feature'))}</td><td>{esc(str(v.get('kind', '-')).replace('_', ' '))}</td>"
        f"<td>{esc(v.get('count'))}</td><td>{esc(_num(v.get('share'), 3))}</td>"
        f"<td>{', '.join(f'<code>{esc(x)}</code>' for x in (v.get('examples') or [])[:5]) or '-'}</td></tr>"
        for v in sorted(violations, key=lambda v: (-(v.get("count") or 0), str(v.get("feature"))))
    )
    return (f'<h2 id="violations">Data-quality violations ({len(violations)})</h2>'
            "<table class=\"violations\"><thead><tr><th>feature</th><th>kind</th><th>rows</th><th>share</th>"
            f"<th>examples</th></tr></thead><tbody>{rows}</tbody></table>")


def render_report(latest: dict[str, Any], history: list[dict[str, Any]], source: str = "") -> Report:
    """The page of one monitor from its latest result and its history (oldest first)."""
    parts = [_header(latest, source), _history(latest, history)]
    features = latest.get("features") or []
    violations = latest.get("violations") or []
    if features:
        parts.append(_features(features))
    if violations or latest["metric"] == "data_quality":
        parts.append(_violations(violations))
    parts.append(f'<p class="muted">Rendered by <code>modelops report</code> from {len(history) or 1} result(s); '
                 "the page needs no network.</p>")
    html = page(f"{latest['monitor']} report ({latest.get('env', '-')})", "\n".join(parts))
    return Report(html, latest["monitor"], len(history) or 1, latest["computed_at"], latest["verdict"])


def build_report(env: Environment, monitor: str, clients: Any) -> Report:
    """Read ``monitor``'s results with ``clients`` and render its page.

    Raises :class:`~modelops.errors.UsageError` when the monitor is unknown, has no job, or
    its job has not written a result yet.

    Example::

        build_report(env, "churn-drift", Target.for_project(Path("."), None).clients(env.region)).verdict
    """
    account = clients.client("sts").get_caller_identity()["Account"]
    where = results.location(env, monitor, account)
    s3 = clients.client("s3")
    latest = results.latest_result(s3, where)
    if latest is None:
        raise UsageError(f"{where.uri(where.latest_key)}: no result of monitor {monitor} yet; "
                         f"run its job first: modelops monitor run {monitor} --env {env.env}")
    return render_report(latest, results.history(s3, where), where.uri(where.latest_key))
