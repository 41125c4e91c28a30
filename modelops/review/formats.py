"""The formats of a review, one function each: plain text, a pull-request comment in
Markdown (with a Mermaid picture of the touched entities).

Example::

    print(to_markdown(diff("modelops.yaml", "origin/main")))
"""

from __future__ import annotations

import re

from modelops.review.report import DiffReport, EnvDiff, money_delta

MARKER = "<!-- modelops-review -->"
#: GitHub refuses comments over 65,536 characters; keep a margin for the marker and notes
MARKDOWN_LIMIT = 64_000


def one_line(report: DiffReport) -> str:
    return f"modelops diff: no changes ({report.base} → {report.head})"


def to_text(report: DiffReport) -> str:
    if not report.changed:
        return one_line(report)
    out = [f"modelops diff {report.spec}: {report.base} → {report.head}", ""]
    out += [f"  {line}" for line in report.summary_lines()]
    for env, f in report.flags():
        out.append(f"  ! {f.label} [{env}] {f.entity or f.resource}: {f.reason}")
    for e in report.envs:
        if not e.changed:
            continue
        out += ["", f"== {e.env} =="]
        if e.stacks:
            out.append(f"  stacks touched: {', '.join(e.stacks)}")
        for s in e.settings:
            out.append(f"  ~ {s.text()}")
        for ent in e.entities:
            mark = {"added": "+", "removed": "-", "changed": "~"}[ent.action]
            out.append(f"  {mark} {ent.kind}.{ent.name} ({ent.action})")
            out += [f"      {fc.text()}" for fc in ent.fields]
        if e.resources:
            out.append("  resources:")
            for r in e.resources:
                why = f"  ({', '.join(r.causes)})" if r.causes else ""
                out.append(f"    {r.action:<8} {r.type} {r.name}{why}")
        out.append(f"  {money_delta(e)}")
        for f in e.findings:
            out.append(f"  policy {f.level}: {f.line()}")
        if e.unbuilt:
            out.append(f"  (artifact not built): {', '.join(e.unbuilt)} — placeholder digests from train spec + data")
    return "\n".join(out)


def to_markdown(report: DiffReport, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary on top, details folded, under ``limit`` bytes (details cut first)."""
    if not report.changed:
        return f"{MARKER}\n{one_line(report)}\n"
    head = [MARKER, f"### modelops diff: `{report.base}` → `{report.head}`", ""]
    head += [f"- **{line.split(':', 1)[0]}**:{line.split(':', 1)[1]}" for line in report.summary_lines()]
    flags = report.flags()
    if flags:
        head += ["", "| risk | environment | where | why |", "| --- | --- | --- | --- |"]
        head += [f"| **{f.label}** | {env} | `{_md(f.entity or f.resource)}` | {_md(f.reason)} |" for env, f in flags]
    unbuilt = sorted({m for e in report.envs for m in e.unbuilt})
    if unbuilt:
        head += ["", f"_(artifact not built): {', '.join(unbuilt)} — compared by a placeholder derived from the train spec and data digest._"]
    summary = "\n".join(head) + "\n"
    sections = [md_env(e) for e in report.envs if e.changed]
    out = summary
    size = len(out.encode())
    for i, section in enumerate(sections):
        need = len(section.encode()) + 1
        if size + need > limit - 300:
            left = len(sections) - i
            out += (f"\n_{left} detail section(s) cut to fit the comment size limit; run "
                    f"`modelops diff --base {report.base} --format text` for everything._\n")
            break
        out += "\n" + section
        size += need
    if len(out.encode()) > limit:  # the summary alone is too long: keep what fits, say so
        cut = out.encode()[: limit - 200].decode(errors="ignore")
        out = cut.rsplit("\n", 1)[0] + "\n\n_…cut to fit the comment size limit._\n"
    return out


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_env(e: EnvDiff) -> str:
    lines = [f"<details><summary><b>{e.env}</b>: {len(e.entities)} entity change(s), "
             + ", ".join(f"{n} {a}" for a, n in e.counts().items() if n) + "</summary>", ""]
    if e.stacks:
        lines += [f"**Stacks touched**: {', '.join(f'`{s}`' for s in e.stacks)}", ""]
    if e.settings:
        lines += ["**Environment settings**", ""] + [f"- `{_md(s.text())}`" for s in e.settings] + [""]
    if e.entities:
        lines += ["**Entities**", ""]
        for ent in e.entities:
            lines.append(f"- {ent.action} `{ent.kind}.{ent.name}`")
            lines += [f"  - `{_md(fc.text())}`" for fc in ent.fields]
        lines.append("")
        mermaid = _mermaid(e)
        if mermaid:
            lines += ["```mermaid", mermaid, "```", ""]
    if e.resources:
        lines += ["**Resources**", "", "| action | type | name | because |", "| --- | --- | --- | --- |"]
        for r in e.resources:
            name = f"{r.renamed[0]} → {r.renamed[1]}" if r.renamed else r.name
            lines.append(f"| {r.action} | `{r.type}` | `{_md(name)}` | {_md(', '.join(r.causes))} |")
        lines.append("")
    lines += [f"**Cost**: {money_delta(e)}", ""]
    if e.cost_after and e.cost_after.lines:
        lines += ["| resource | monthly |", "| --- | ---: |"]
        lines += [f"| {_md(line.description)} (`{_md(line.name)}`) | ${line.monthly:,.2f} |" for line in e.cost_after.lines if line.monthly]
        lines.append("")
    if e.cost_after and e.cost_after.unpriced:
        lines += ["Unpriced: " + ", ".join(f"`{_md(u.name)}` ({_md(u.reason)})" for u in e.cost_after.unpriced), ""]
    if e.findings:
        lines += ["**Policies after the change**", ""]
        new = set(e.new_findings)
        lines += [f"- {f.level}{' (new)' if f in new else ''}: `{f.policy}` {_md(f.entity)} — {_md(f.message)}; {_md(f.fix)}" for f in e.findings]
        lines.append("")
    lines.append("</details>")
    return "\n".join(lines)


_NODE_PREFIX = {"datasets": "ds", "models": "mdl", "endpoints": "ep", "monitors": "mon"}


def _node(kind: str, name: str) -> str:
    return f"{_NODE_PREFIX[kind]}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def _mermaid(e: EnvDiff) -> str:
    """dataset → model → endpoint → monitors, for the entities this change touches."""
    status = {(c.kind, c.name): c.action for c in e.entities}
    env_after = getattr(e, "_after", None)
    env_before = getattr(e, "_before", None)
    touched = {k for k in status if k[0] in ("datasets", "models", "monitors")}
    if not touched:
        return ""
    lines = ["flowchart LR"]
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()

    def node(kind: str, name: str) -> str:
        nid = _node(kind, name)
        if nid not in nodes:
            shape = {"datasets": f"[({name})]", "models": f"[{name}]", "monitors": f">{name}]",
                     "endpoints": f"{{{{{name} endpoint}}}}"}[kind]
            nodes[nid] = f"  {nid}{shape}".replace("[(", "[(").replace(")]", ")]")
            action = status.get((kind, name)) or (status.get(("models", name)) if kind == "endpoints" else None)
            if action:
                nodes[nid] += f":::{action}"
        return nid

    for side in (env_before, env_after):
        if side is None:
            continue
        for kind, name in sorted(touched):
            if kind == "models" and name in side.models:
                m = side.models[name]
                edges.add((node("datasets", m.dataset), node("models", name)))
                edges.add((node("models", name), node("endpoints", name)))
                for mon in side.monitors.values():
                    if mon.model == name:
                        edges.add((node("endpoints", name), node("monitors", mon.name)))
            elif kind == "datasets" and name in side.datasets:
                node("datasets", name)
                for m in side.models.values():
                    if m.dataset == name:
                        edges.add((node("datasets", name), node("models", m.name)))
            elif kind == "monitors" and name in side.monitors:
                mon = side.monitors[name]
                if mon.model:
                    edges.add((node("endpoints", mon.model), node("monitors", name)))
                    edges.add((node("models", mon.model), node("endpoints", mon.model)))
                elif mon.dataset:
                    edges.add((node("datasets", mon.dataset), node("monitors", name)))
    lines += sorted(nodes.values())
    lines += [f"  {a} --> {b}" for a, b in sorted(edges)]
    lines += ["  classDef added fill:#d4f8d4,stroke:#2a2", "  classDef removed fill:#f8d4d4,stroke:#a22",
              "  classDef changed fill:#fff3c4,stroke:#b80"]
    return "\n".join(lines)
