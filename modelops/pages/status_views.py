"""The three ways ``modelops status`` shows an :class:`~modelops.pages.status.EnvironmentStatus`.

:func:`plain_text` for pipes and logs (columns, no colour), :func:`rich_tables` for a
terminal (the ``rich`` library: tables, colour), :func:`html_page` for ``--html FILE`` (one
self-contained page). Each shows the same facts in the same order; the differences from
the spec come first, because they are what needs doing.

Example::

    print(plain_text(status))
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelops.pages.html import esc, page, short
from modelops.pages.status import JOB_METRICS, EnvironmentStatus, ModelStatus, MonitorStatus

__all__ = ["html_page", "plain_text", "rich_tables"]

MODEL_COLUMNS = ["variant", "version", "weight", "spec", "instances", "spec"]
MONITOR_COLUMNS = ["monitor", "metric", "alarm", "actions", "since", "last job"]
DATASET_COLUMNS = ["dataset", "objects", "size", "last write", "freshness alarm"]


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(count)


def _job(monitor: MonitorStatus) -> str:
    job = monitor.job
    if job is None:
        return "-" if monitor.metric not in JOB_METRICS else "not run"
    value = f" {_num(job.value)} vs {_num(job.threshold)}" if job.value is not None else ""
    return f"{job.verdict}{value} at {job.computed_at}"



def _actions(monitor: MonitorStatus) -> str:
    return "-" if monitor.actions_enabled is None else ("on" if monitor.actions_enabled else "DISABLED")


def _variant_rows(model: ModelStatus) -> list[list[str]]:
    return [[v.name, short(v.version), _num(v.weight), _num(v.spec_weight), _num(v.instances), v.spec_instances]
            for v in model.variants]


def _monitor_rows(monitors: list[MonitorStatus]) -> list[list[str]]:
    return [[m.name, m.metric, m.state or "missing", _actions(m), m.state_since or "-", _job(m)] for m in monitors]


def _model_facts(model: ModelStatus) -> list[str]:
    approved = short(model.latest_approved)
    if model.latest_approved and model.pinned:
        approved += " (pinned)" if model.latest_approved == model.pinned else " (not the pinned version)"
    promo = model.last_promotion
    promoted = (f"{short(promo.get('digest'))} from {promo.get('from')} at {promo.get('when')} by {promo.get('who')}"
                if promo else "none logged")
    scaling = model.autoscaling
    scale = f"{scaling['min']}-{scaling['max']} (spec {scaling['spec_min']}-{scaling['spec_max']})" if scaling else "-"
    return [
        f"endpoint {model.endpoint}: {model.endpoint_state or 'not found'}",
        f"pinned {short(model.pinned) if model.pinned else 'no (serves its build)'}; spec serves {short(model.expected_version)}",
        f"latest approved {approved}",
        f"last promotion here {promoted}",
        f"autoscaling {scale}",
    ]


def _dataset_rows(status: EnvironmentStatus) -> list[list[str]]:
    rows = []
    for d in status.datasets:
        fresh = d.freshness
        alarm = f"{fresh.name}: {fresh.state or 'missing'}" + ("" if fresh.actions_enabled in (None, True) else " (actions DISABLED)") \
            if fresh else "none"
        rows.append([d.name, _num(d.objects), _size(d.bytes), d.last_write or "-", alarm])
    return rows


def _columns(headers: list[str], rows: list[list[str]], indent: str = "  ") -> str:
    cells = [headers] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _headline(status: EnvironmentStatus) -> str:
    where = status.target or "local emulator"
    return f"{status.project}/{status.env} in {status.region} (account {status.account}, {where}) at {status.generated_at}"


def plain_text(status: EnvironmentStatus) -> str:
    """Columns without colour: what a pipe, a log or a CI job gets."""
    lines = [_headline(status), ""]
    if status.differences:
        lines.append(f"differs from the spec ({len(status.differences)}):")
        lines += [f"  ! {d}" for d in status.differences]
    else:
        lines.append("matches the spec: no differences")
    for model in status.models:
        lines += ["", f"model {model.name}"]
        lines += [f"  {fact}" for fact in _model_facts(model)]
        lines += [_columns(MODEL_COLUMNS, _variant_rows(model))]
        if model.monitors:
            lines += [_columns(MONITOR_COLUMNS, _monitor_rows(model.monitors))]
    if status.datasets:
        lines += ["", "datasets", _columns(DATASET_COLUMNS, _dataset_rows(status))]
    return "\n".join(lines)


def _styled(value: str) -> Text:
    style = {"OK": "green", "ok": "green", "InService": "green", "on": "green", "ALARM": "bold red",
             "alarm": "bold red", "DISABLED": "bold red", "missing": "bold red", "INSUFFICIENT_DATA": "yellow",
             "no_data": "yellow", "not run": "yellow"}.get(value.split(" ")[0], "")
    return Text(value, style=style)


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[_styled(cell) for cell in row])
    return table


def rich_tables(status: EnvironmentStatus) -> Group:
    """Tables and colour for a terminal (``rich``)."""
    parts: list[Any] = [Text(_headline(status), style="bold")]
    if status.differences:
        parts.append(Text(f"differs from the spec ({len(status.differences)}):", style="bold red"))
        parts += [Text(f"  ✗ {d}", style="red") for d in status.differences]
    else:
        parts.append(Text("✓ matches the spec: no differences", style="green"))
    for model in status.models:
        parts.append(Text(""))
        parts.append(Text(f"model {model.name}", style="bold cyan"))
        parts += [Text(f"  {fact}") for fact in _model_facts(model)]
        parts.append(_table("variants", MODEL_COLUMNS, _variant_rows(model)))
        if model.monitors:
            parts.append(_table("monitors", MONITOR_COLUMNS, _monitor_rows(model.monitors)))
    if status.datasets:
        parts.append(_table("datasets", DATASET_COLUMNS, _dataset_rows(status)))
    return Group(*parts)


def _html_table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class=\"{esc(_css(c))}\">{esc(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table class=\"{cls}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _css(cell: str) -> str:
    word = cell.split(" ")[0]
    return {"OK": "ok", "ok": "ok", "InService": "ok", "ALARM": "bad", "alarm": "bad", "DISABLED": "bad",
            "missing": "bad", "INSUFFICIENT_DATA": "warn", "no_data": "warn", "not": "warn"}.get(word, "")


def html_page(status: EnvironmentStatus) -> str:
    """One self-contained page (``--html FILE``)."""
    parts = [f"<h1>{esc(status.project)}/{esc(status.env)}: status</h1>", f"<p class=\"meta\">{esc(_headline(status))}</p>"]
    if status.differences:
        parts.append(f"<h2 class=\"bad\">Differs from the spec ({len(status.differences)})</h2><ul class=\"differences\">")
        parts += [f"<li>{esc(d)}</li>" for d in status.differences]
        parts.append("</ul>")
    else:
        parts.append("<p class=\"ok\">Matches the spec: no differences.</p>")
    for model in status.models:
        parts.append(f"<h2 id=\"model-{esc(model.name)}\">Model {esc(model.name)}</h2>")
        parts.append("<ul>" + "".join(f"<li>{esc(f)}</li>" for f in _model_facts(model)) + "</ul>")
        parts.append(_html_table(MODEL_COLUMNS, _variant_rows(model), "variants"))
        if model.monitors:
            parts.append(_html_table(MONITOR_COLUMNS, _monitor_rows(model.monitors), "monitors"))
    if status.datasets:
        parts.append("<h2>Datasets</h2>" + _html_table(DATASET_COLUMNS, _dataset_rows(status), "datasets"))
    return page(f"{status.project}/{status.env} status", "\n".join(parts))
