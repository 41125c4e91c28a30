"""The shell of every page ModelOps writes: one self-contained HTML file.

Self-contained means the page needs no network at all: styles are inline, charts are
inline SVG, there is no script, no font file, no image from anywhere. A Content Security
Policy (``default-src 'none'``) makes the browser refuse any fetch a page might still try.

Example::

    page("churn-drift on dev", "<h1>…</h1>")      # '<!doctype html>…'
"""

from __future__ import annotations

from html import escape

__all__ = ["CSS", "esc", "page", "short"]

#: refuses every fetch: inline styles and SVG only
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0;
       padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 0; overflow-wrap: anywhere; }
p.meta, .muted { color: var(--muted); margin: 2px 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; table-layout: auto; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top;
         overflow-wrap: anywhere; }
th { font-weight: 600; background: #f6f8fa; }
code { font: 12px ui-monospace, monospace; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600; font-size: 12px;
         border: 1px solid currentColor; }
.ok { color: var(--ok); } .alarm, .bad { color: var(--bad); } .no_data, .warn { color: var(--warn); }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.summary div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.summary b { display: block; font-size: 18px; }
.features { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
.feature { border: 1px solid var(--line); border-radius: 6px; padding: 10px; min-width: 0; }
.feature.drifted { border-color: var(--bad); }
.chart { margin: 6px 0 0; }
.chart svg { width: 100%; height: auto; display: block; }
svg * { stroke-linejoin: round; stroke-linecap: butt; }
.differences li { color: var(--bad); }
"""


def esc(value: object) -> str:
    """``value`` as HTML text (``None`` as a dash)."""
    return "-" if value is None else escape(str(value), quote=True)


def short(digest: str | None) -> str:
    """A digest as people read it: ``sha256:`` and 12 hex digits."""
    if not digest:
        return "-"
    return digest[:19] if digest.startswith("sha256:") else digest


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body``: inline CSS, the no-fetch policy, no script."""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
