"""Charts of a monitor report, drawn offline by matplotlib as inline SVG.

matplotlib's object API (``Figure`` with the SVG canvas), never ``pyplot``: no global
figure state, no GUI backend, nothing fetched. Text stays text (``svg.fonttype: none``), so
a chart is small, its labels are in the page's DOM, and a browser draws them with its own
fonts. Each chart's element ids are salted with its name, so that many charts share a page
without sharing an id. What the SVG writer adds around the drawing (XML declaration,
doctype, RDF metadata, namespace declarations) is cut: inline SVG in HTML needs none of it.

Example::

    distribution_svg("tenure", "numeric", [0, 6, 12], [10, 20], [5, 25], None)   # '<svg …>…</svg>'
"""

from __future__ import annotations

import io
import re
from typing import Sequence

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

BASELINE_COLOUR = "#8c959f"
CURRENT_COLOUR = "#0969da"
THRESHOLD_COLOUR = "#cf222e"
#: labels on a distribution's x axis at most (the rest are left blank, every bar is drawn)
MAX_TICK_LABELS = 12

_PREAMBLE = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->|<metadata>.*?</metadata>", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_SIZE = re.compile(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')
#: the writer's one style rule, global once inlined: the page's CSS carries it once (``svg *``)
_STYLE = re.compile(r"<defs>\s*<style[^>]*>.*?</style>\s*</defs>", re.S)
_ID = re.compile(r'\sid="([^"]*)"')
_REFERENCE = re.compile(r'(?:url\(#|href="#)([^)"]+)')


def _svg(figure: Figure, salt: str, label: str) -> str:
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "svg.image_inline": True}):
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": None})
    text = _PREAMBLE.sub("", buffer.getvalue())
    text = _NAMESPACES.sub("", text)
    text = _SIZE.sub(r"\1", text, count=1)
    text = _STYLE.sub("", text, count=1)
    # ids nobody references (figure_1, patch_2, ...) would repeat in every chart of a page
    used = set(_REFERENCE.findall(text))
    text = _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", text)
    aria = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace("<svg", f'<svg role="img" aria-label="{aria}"', 1).strip()


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts)) or 1.0
    return [c / total for c in counts]


def _bin_labels(edges: Sequence[float]) -> list[str]:
    return [f"{a:g}–{b:g}" for a, b in zip(edges[:-1], edges[1:])]


def distribution_svg(name: str, kind: str, edges: Sequence[float] | None, baseline: Sequence[float],
                     current: Sequence[float], categories: Sequence[str] | None) -> str:
    """The baseline and current distribution of one feature, as shares, on one chart."""
    labels = list(categories) if kind == "categorical" and categories else _bin_labels(edges or [])
    if len(labels) != len(baseline):
        labels = [str(i + 1) for i in range(len(baseline))]
    base, cur = _shares(baseline), _shares(current)
    figure = Figure(figsize=(4.8, 2.5), dpi=72)
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    width = 0.42
    axes.bar([p - width / 2 for p in positions], base, width, label="baseline", color=BASELINE_COLOUR)
    axes.bar([p + width / 2 for p in positions], cur, width, label="current", color=CURRENT_COLOUR)
    step = max(1, -(-len(labels) // MAX_TICK_LABELS))
    axes.set_xticks(positions, [lab if i % step == 0 else "" for i, lab in enumerate(labels)],
                    rotation=30 if kind == "numeric" or len(labels) > 4 else 0, ha="right" if kind == "numeric" else "center",
                    fontsize=7)
    axes.tick_params(axis="y", labelsize=7)
    axes.set_ylabel("share of rows", fontsize=7)
    axes.set_title(name, fontsize=9, loc="left")
    axes.legend(fontsize=7, frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout(pad=0.4)
    return _svg(figure, f"feature:{name}", f"{name}: baseline and current distribution")


def history_svg(name: str, times: Sequence[str], values: Sequence[float | None], threshold: float | None,
                alarms: Sequence[bool], ylabel: str) -> str:
    """A monitor's value over its runs, with the threshold as a line; alarming runs in red."""
    figure = Figure(figsize=(9.6, 2.6), dpi=72)
    axes = figure.add_subplot()
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if points:
        axes.plot([i for i, _ in points], [v for _, v in points], color=CURRENT_COLOUR, marker="o", markersize=3,
                  linewidth=1.2, label=ylabel)
        red = [(i, v) for i, v in points if alarms[i]]
        if red:
            axes.scatter([i for i, _ in red], [v for _, v in red], color=THRESHOLD_COLOUR, s=16, zorder=3,
                         label="alarm")
    if threshold is not None:
        axes.axhline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    step = max(1, -(-len(times) // 8))
    ticks = list(range(0, len(times), step))
    axes.set_xticks(ticks, [times[i].replace("T", " ").removesuffix("Z") for i in ticks], fontsize=7)
    axes.tick_params(axis="y", labelsize=7)
    axes.set_ylabel(ylabel, fontsize=7)
    axes.legend(fontsize=7, frameon=False, loc="best")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout(pad=0.4)
    return _svg(figure, f"history:{name}", f"{name}: {ylabel} over time against the threshold")
