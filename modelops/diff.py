"""Pull-request review of a spec change: what changes, what AWS replaces, what it risks and costs.

``diff(spec, base)`` compares the spec (and its overlays) in the working tree with another
version of it — a git ref (``origin/main``) or a directory — for every environment of
either side:

1. **Entities**: per environment, each dataset, model, monitor and notification channel
   added, removed or changed, with its changed fields ``old → new`` (https subscription
   URLs are masked: they are secrets).
2. **Resources**: both sides are rendered in-process and every resource is classified
   ``create`` / ``update`` / ``replace`` / ``delete`` with the inputs that caused it.
   Which inputs force a replacement is the table in ``modelops/data/replacement.json``.
   SageMaker models and endpoint configurations are named by content, so a change shows
   up as a new name: the old/new pair is reported as one *replace* of the same logical
   resource.
3. **Risks**, each with its reason: DATA LOSS, ENDPOINT REPLACED (vs updated in place,
   blue/green), CAPACITY RESET, MONITOR REMOVED, PERMISSION WIDENED, PROTECTION REMOVED.
4. **Cost** before/after/delta per environment (:mod:`modelops.cost`) and the
   **policies** after the change (:mod:`modelops.policy`).

Diff never trains a model: an artifact comes from the build cache (``.modelops``) or a
pinned version in the store; otherwise a deterministic placeholder derived from the train
spec and the data digest stands in, and the report says ``(artifact not built)``.

Example::

    report = diff("modelops.yaml", "origin/main")
    print(report.to_markdown())
    report.failed_conditions(["data-loss", "cost>100"])   # [] when none holds
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from modelops.cost import CostReport, estimate
from modelops.errors import ModelOpsError, SpecError, UsageError
from modelops.forked import fork_map, share_out
from modelops.policy import Finding, entity_of
from modelops.security import findings as evaluate  # the policies and the security controls (FSBP)
from modelops.resolved import Artifact, Environment
from modelops.loader import no_gc
from modelops.local.state import SECRET_URL
from modelops.runtime import Registration

MARKER = "<!-- modelops-review -->"
#: GitHub refuses comments over 65,536 characters; keep a margin for the marker and notes
MARKDOWN_LIMIT = 64_000
ACTIONS = ("create", "update", "replace", "delete")
ENTITY_KINDS = ("datasets", "models", "monitors", "channels")

BUCKET = "aws:s3/bucket:Bucket"
KMS_KEY = "aws:kms/key:Key"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCALING_TARGET = "aws:appautoscaling/target:Target"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "aws:iam/role:Role"
POLICY_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    ROLE: "assumeRolePolicy",
}

#: risk flags: ``--fail-on`` kind → label shown to reviewers
FLAGS = {
    "data-loss": "DATA LOSS",
    "endpoint-replaced": "ENDPOINT REPLACED",
    "endpoint-updated": "ENDPOINT UPDATED IN PLACE",
    "capacity-reset": "CAPACITY RESET",
    "monitor-removed": "MONITOR REMOVED",
    "permission-widened": "PERMISSION WIDENED",
    "protection-removed": "PROTECTION REMOVED",
}
#: ``--fail-on`` kinds besides the flags; ``cost>N`` is parsed separately
FAIL_KINDS = (*FLAGS, "replace", "delete", "policy", "any")
TAG_KEYS = ("tags", "tagsAll")
_HASH_SUFFIX = re.compile(r"-[0-9a-f]{8}$")
_HTTPS = re.compile(r"https://[^\s\"']+")


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any

    def text(self) -> str:
        return f"{self.path}: {_show(self.old)} → {_show(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class EntityChange:
    kind: str
    name: str
    action: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action,
                "fields": [f.to_dict() for f in self.fields]}


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    action: str  # create | update | replace | delete
    entity: str
    #: the inputs that changed (for replace: the ones forcing it first)
    causes: tuple[str, ...] = ()
    #: old → new physical name when a content-named resource is replaced by a new name
    renamed: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "action": self.action,
                "entity": self.entity, "causes": list(self.causes),
                "renamed": list(self.renamed) if self.renamed else None}


@dataclass(frozen=True)
class Flag:
    kind: str
    entity: str
    resource: str
    reason: str

    @property
    def label(self) -> str:
        return FLAGS[self.kind]

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "entity": self.entity, "resource": self.resource,
                "reason": self.reason}


@dataclass
class EnvDiff:
    env: str
    #: added | removed | changed | unchanged
    status: str
    entities: list[EntityChange] = field(default_factory=list)
    resources: list[ResourceChange] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    cost_before: CostReport | None = None
    cost_after: CostReport | None = None
    findings: list[Finding] = field(default_factory=list)
    #: findings that the base did not have
    new_findings: list[Finding] = field(default_factory=list)
    #: models rendered with a placeholder artifact (no cached build)
    unbuilt: list[str] = field(default_factory=list)
    #: env-level settings changed (protect, encryption, region, tags, policies)
    settings: list[FieldChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.entities or self.resources or self.settings) or self.status in ("added", "removed")

    @property
    def cost_delta(self) -> float:
        before = self.cost_before.total_monthly if self.cost_before else 0.0
        after = self.cost_after.total_monthly if self.cost_after else 0.0
        return round(after - before, 2)

    def counts(self) -> dict[str, int]:
        return {a: sum(1 for r in self.resources if r.action == a) for a in ACTIONS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "status": self.status,
            "settings": [f.to_dict() for f in self.settings],
            "entities": [e.to_dict() for e in self.entities],
            "resources": [r.to_dict() for r in self.resources],
            "counts": self.counts(),
            "flags": [f.to_dict() for f in self.flags],
            "cost": {
                "before": self.cost_before.total_monthly if self.cost_before else 0.0,
                "after": self.cost_after.total_monthly if self.cost_after else 0.0,
                "delta": self.cost_delta,
                "currency": (self.cost_after or self.cost_before).currency if (self.cost_after or self.cost_before) else "USD",
                "usage_based": [u.to_dict() for u in self.cost_after.usage_based] if self.cost_after else [],
                "unpriced": [u.to_dict() for u in self.cost_after.unpriced] if self.cost_after else [],
            },
            "policies": [f.to_dict() for f in self.findings],
            "new_policy_findings": [f.to_dict() for f in self.new_findings],
            "artifacts_not_built": list(self.unbuilt),
        }


@dataclass
class DiffReport:
    """The whole review: one :class:`EnvDiff` per environment of either side."""

    spec: str
    base: str
    head: str
    envs: list[EnvDiff] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(e.changed for e in self.envs)

    def flags(self) -> list[tuple[str, Flag]]:
        return [(e.env, f) for e in self.envs for f in e.flags]

    def failed_conditions(self, kinds: Iterable[str]) -> list[str]:
        """Which ``--fail-on`` conditions hold, each as a one-line reason ([] when none)."""
        held = []
        for kind in kinds:
            if kind.startswith("cost>"):
                limit = float(kind[5:])
                for e in self.envs:
                    if e.cost_delta > limit:
                        held.append(f"cost: {e.env} rises by {e.cost_delta:.2f} USD/month (limit {limit:g})")
            elif kind == "policy":
                for e in self.envs:
                    for f in e.findings:
                        if f.level == "mandatory":
                            held.append(f"policy: {e.env}: {f.line()}")
            elif kind in ("replace", "delete"):
                for e in self.envs:
                    for r in e.resources:
                        if r.action == kind:
                            held.append(f"{kind}: {e.env}: {r.type} {r.name}")
            elif kind == "any":
                if self.changed:
                    held.append("any: the change is not empty")
            else:
                for env, f in self.flags():
                    if f.kind == kind:
                        held.append(f"{f.label}: {env}: {f.entity or f.resource}: {f.reason}")
        return held

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "base": self.base,
            "head": self.head,
            "changed": self.changed,
            "summary": self.summary_lines(),
            "environments": [e.to_dict() for e in self.envs],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    # ------------------------------------------------------------ text forms

    def one_line(self) -> str:
        return f"modelops diff: no changes ({self.base} → {self.head})"

    def summary_lines(self) -> list[str]:
        lines = []
        for e in self.envs:
            if not e.changed:
                continue
            c = e.counts()
            parts = [f"{n} {a}" for a, n in c.items() if n]
            ents = f"{len(e.entities)} entit{'y' if len(e.entities) == 1 else 'ies'} changed"
            cost = _money_delta(e)
            mand = sum(1 for f in e.findings if f.level == "mandatory")
            pol = f"{mand} mandatory policy finding(s)" if mand else "policies ok"
            status = {"added": " (new environment)", "removed": " (environment removed)"}.get(e.status, "")
            lines.append(f"{e.env}{status}: {ents}; resources: {', '.join(parts) or 'none'}; {cost}; {pol}")
        return lines

    def to_text(self) -> str:
        if not self.changed:
            return self.one_line()
        out = [f"modelops diff {self.spec}: {self.base} → {self.head}", ""]
        out += [f"  {line}" for line in self.summary_lines()]
        for env, f in self.flags():
            out.append(f"  ! {f.label} [{env}] {f.entity or f.resource}: {f.reason}")
        for e in self.envs:
            if not e.changed:
                continue
            out += ["", f"== {e.env} =="]
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
            out.append(f"  {_money_delta(e)}")
            for f in e.findings:
                out.append(f"  policy {f.level}: {f.line()}")
            if e.unbuilt:
                out.append(f"  (artifact not built): {', '.join(e.unbuilt)} — placeholder digests from train spec + data")
        return "\n".join(out)

    def to_markdown(self, limit: int = MARKDOWN_LIMIT) -> str:
        """A PR comment: summary on top, details folded, under ``limit`` bytes (details cut first)."""
        if not self.changed:
            return f"{MARKER}\n{self.one_line()}\n"
        head = [MARKER, f"### modelops diff: `{self.base}` → `{self.head}`", ""]
        head += [f"- **{line.split(':', 1)[0]}**:{line.split(':', 1)[1]}" for line in self.summary_lines()]
        flags = self.flags()
        if flags:
            head += ["", "| risk | environment | where | why |", "| --- | --- | --- | --- |"]
            head += [f"| **{f.label}** | {env} | `{_md(f.entity or f.resource)}` | {_md(f.reason)} |" for env, f in flags]
        unbuilt = sorted({m for e in self.envs for m in e.unbuilt})
        if unbuilt:
            head += ["", f"_(artifact not built): {', '.join(unbuilt)} — compared by a placeholder derived from the train spec and data digest._"]
        summary = "\n".join(head) + "\n"
        sections = [_md_env(e) for e in self.envs if e.changed]
        out = summary
        size = len(out.encode())
        for i, section in enumerate(sections):
            need = len(section.encode()) + 1
            if size + need > limit - 300:
                left = len(sections) - i
                out += (f"\n_{left} detail section(s) cut to fit the comment size limit; run "
                        f"`modelops diff --base {self.base} --format text` for everything._\n")
                break
            out += "\n" + section
            size += need
        if len(out.encode()) > limit:  # the summary alone is too long: keep what fits, say so
            cut = out.encode()[: limit - 200].decode(errors="ignore")
            out = cut.rsplit("\n", 1)[0] + "\n\n_…cut to fit the comment size limit._\n"
        return out


def _show(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= 120 else text[:117] + "…"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _money_delta(e: EnvDiff) -> str:
    before = e.cost_before.total_monthly if e.cost_before else 0.0
    after = e.cost_after.total_monthly if e.cost_after else 0.0
    sign = "+" if e.cost_delta >= 0 else "−"
    approx = "~" if (e.cost_after and e.cost_after.approximate) or (e.cost_before and e.cost_before.approximate) else ""
    extra = ""
    if e.cost_after and e.cost_after.unpriced:
        extra = f", {len(e.cost_after.unpriced)} unpriced"
    return f"cost {approx}${before:,.2f} → {approx}${after:,.2f}/month ({sign}${abs(e.cost_delta):,.2f}{extra}, usage-based extra)"


def _md_env(e: EnvDiff) -> str:
    lines = [f"<details><summary><b>{e.env}</b>: {len(e.entities)} entity change(s), "
             + ", ".join(f"{n} {a}" for a, n in e.counts().items() if n) + "</summary>", ""]
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
    lines += [f"**Cost**: {_money_delta(e)}", ""]
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


# ---------------------------------------------------------------- replacement table


@lru_cache(maxsize=1)
def replacement_table() -> dict[str, Any]:
    """Which inputs of each resource type force a replacement (``modelops/data/replacement.json``)."""
    text = resources.files("modelops.data").joinpath("replacement.json").read_text(encoding="utf-8")
    return json.loads(text)["types"]


def replace_keys(type_: str) -> tuple[set[str], bool]:
    """(input names forcing replacement, every input forces it?) for a resource type."""
    entry = replacement_table().get(type_)
    if entry is None:
        return set(), False
    return set(entry.get("replace", [])), bool(entry.get("all", False))


# ---------------------------------------------------------------- loading the two sides


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120)


def _git_toplevel(path: Path) -> Path | None:
    result = _git(["rev-parse", "--show-toplevel"], path)
    return Path(result.stdout.decode().strip()).resolve() if result.returncode == 0 else None


def materialise_base(base: str, spec: Path, into: Path) -> tuple[Path, Path]:
    """Put the base version of ``spec`` on disk; returns (base spec path, base root).

    ``base`` is a directory (holding another version of the spec's directory) or a git ref:
    the spec's directory at that ref (overlays and data files with it, so digests match)
    is extracted with ``git archive`` under ``into``.
    """
    spec = spec.resolve()
    spec_dir = spec.parent
    candidate = Path(base)
    if candidate.is_dir():
        root = candidate.resolve()
        # the same relative place as in the working tree when the base is a whole checkout
        top = _git_toplevel(spec_dir)
        if top is not None and (root / spec.relative_to(top)).is_file():
            return root / spec.relative_to(top), root / spec_dir.relative_to(top)
        return root / spec.name, root
    top = _git_toplevel(spec_dir)
    if top is None:
        raise UsageError(f"--base {base}: not a directory, and {spec_dir} is not in a git repository; "
                         "pass a directory holding the other version, or run inside the repository")
    commit = _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], top)
    if commit.returncode != 0:
        raise UsageError(f"--base {base}: not a directory or a git ref of {top}; fix: `git fetch` it, "
                         "or pass e.g. origin/main")
    sha = commit.stdout.decode().strip()
    rel_dir = spec_dir.relative_to(top).as_posix()
    archive = _git(["archive", "--format=tar", sha, "--", rel_dir if rel_dir != "." else "."], top)
    out = into / "base"
    out.mkdir(parents=True, exist_ok=True)
    if archive.returncode == 0:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(out, filter="data")
    # a spec directory that does not exist at the base is an empty base: everything is new
    root = out / rel_dir if rel_dir != "." else out
    _fetch_referenced_files(root / spec.name, out, top, sha)
    return root / spec.name, root


def _fetch_referenced_files(spec: Path, out: Path, top: Path, sha: str) -> None:
    """Data and artifact files the base spec references outside its directory, from the same commit."""
    if not spec.is_file():
        return
    import yaml

    try:
        text = spec.read_text(encoding="utf-8")
        if ".." not in text:
            return  # every relative path stays under the spec's directory: extracted with it
        # the C loader when PyYAML has it: the same data, parsed in C (the pure-Python loader showed in profiles)
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except (yaml.YAMLError, OSError):
        return  # loading reports the problem with its position
    refs = {d.get("source") for d in (data.get("datasets") or {}).values() if isinstance(d, dict)}
    refs |= {m.get("artifact") for m in (data.get("models") or {}).values() if isinstance(m, dict)}
    for ref in sorted(r for r in refs if isinstance(r, str)):
        if not isinstance(ref, str) or not ref:
            continue
        target = (spec.parent / ref).resolve()
        if target.exists():
            continue
        try:
            rel = target.relative_to(out.resolve())
        except ValueError:
            continue  # outside the repository: nothing git can give
        blob = _git(["show", f"{sha}:{rel.as_posix()}"], top)
        if blob.returncode == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.stdout)


def _environments(spec: Path, only: list[str] | None) -> dict[str, Environment]:
    if not spec.is_file():
        return {}
    from modelops import envs as envs_mod  # imported here: spec loading is another area's module

    names = list(envs_mod.list_environments(str(spec)))
    if only:
        names = [n for n in names if n in only]
    # one pass: the base spec is parsed and checked once for every environment
    problems, resolved = envs_mod.check(str(spec), names)
    if problems:
        raise SpecError(problems)
    return resolved


# ---------------------------------------------------------------- artifacts without training


def placeholder_digest(env: Environment, model_name: str) -> str:
    """A deterministic stand-in digest: the model's train spec (or pin) and its data digest."""
    model = env.models[model_name]
    if model.version:
        return model.version
    dataset = env.datasets.get(model.dataset)
    payload = {
        "model": model_name,
        "train": dataclasses.asdict(model.train) if model.train else None,
        "data": dataset.source_digest if dataset else None,
        "artifact_source": _file_digest(model.artifact_source) if model.artifact_source else None,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return "sha256:" + hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def _default_framework() -> str:
    try:
        from importlib.metadata import version

        from components.serving_images import framework_for_sklearn

        return framework_for_sklearn(version("scikit-learn")) or "1.9-0"
    except Exception:  # noqa: BLE001 - a placeholder only needs a plausible tag
        return "1.9-0"


def attach_without_training(env: Environment, store_root: Path, scratch: Path) -> tuple[Environment, list[str]]:
    """``env`` with an artifact on every model, never training; returns (env, models with placeholders)."""
    try:
        from modelops.artifacts import resolve_artifact
    except ImportError:  # the artifact store is another area's module; without it, placeholders
        resolve_artifact = None  # type: ignore[assignment]
    models = {}
    unbuilt = []
    for name, model in env.models.items():
        artifact = model.artifact
        if artifact is None and resolve_artifact is not None:
            try:
                artifact = resolve_artifact(env, model, build=False, root=store_root)
            except ModelOpsError:
                if model.artifact_source and not model.version and model.train is None:
                    raise  # the spec names a package file that is unusable: the spec's error, not a missing build
                artifact = None
        if artifact is None:
            digest = placeholder_digest(env, name)
            # a stable place (not a temporary directory) keeps render cache keys stable across runs
            path = store_root / ".modelops" / "cache" / "placeholders" / digest.removeprefix("sha256:")[:16] / "model.tar.gz"
            if not path.exists():
                # written whole or not at all: reviews of other environments may read it meanwhile
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(f"placeholder {digest}\n".encode())
                os.replace(tmp, path)
            artifact = Artifact(path=str(path), digest=digest,
                                framework_version=model.framework_version or _default_framework())
            unbuilt.append(name)
        models[name] = dataclasses.replace(model, artifact=artifact)
    return dataclasses.replace(env, models=models), unbuilt


# ---------------------------------------------------------------- rendering (cached)


#: a spec of this size or more (about 200 models) takes a tenth of a second or more to load:
#: a diff loads the base side in a forked process while it loads the working tree's
PARALLEL_LOAD_BYTES = 128 * 1024

#: environment variable: ``off`` renders every environment in full, bypassing the render
#: cache (the benchmarks' reference for the incremental path, and a way to rule the cache out)
RENDER_CACHE_ENV = "MODELOPS_RENDER_CACHE"


def render_graph(env: Environment, cache_dir: Path | None = None, *, jobs: int | None = None) -> list[Registration]:
    """The rendered graph of a resolved environment, through the render cache; a render
    uses up to ``jobs`` processes (default :func:`modelops.render.render_jobs`)."""
    return cached_render(env, cache_dir, jobs=jobs).registrations


def cached_render(env: Environment, cache_dir: Path | None = None, *, jobs: int | None = None,
                  collect: bool = True) -> Any:
    """The :class:`~modelops.render.Graph` of ``env`` through the render cache (in this
    process and under ``cache_dir``), unless :data:`RENDER_CACHE_ENV` is ``off``.
    ``collect=False``: see :func:`modelops.render.render`.

    Example::

        graph = cached_render(env, Path(".modelops/cache"))   # a second call: no render
    """
    from modelops.render import jobs_setting, render

    jobs_setting()  # a bad MODELOPS_RENDER_JOBS is an error whether or not a render is needed
    if os.environ.get(RENDER_CACHE_ENV) == "off":
        return render(env, jobs=jobs, collect=collect)
    return RENDER_CACHE.render(env, cache_dir, jobs=jobs, collect=collect)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plainify(value: Any) -> Any:
    """Plain, key-sorted data (dataclasses as dicts, tuples as lists) for hashing and comparing.

    The same result as ``dataclasses.asdict`` followed by sorting, without its deep copies:
    resolved specs are frozen dataclasses of immutable leaves, walked once per entity."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): _plainify(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if kind is list or kind is tuple:
        return [_plainify(v) for v in value]
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            if isinstance(value, dict):
                return _plainify(dict(value))
            if isinstance(value, (list, tuple)):
                return [_plainify(v) for v in value]
            return value
        names = _FIELD_NAMES[kind] = tuple(sorted(f.name for f in dataclasses.fields(value)))
    return {name: _plainify(getattr(value, name)) for name in names}


def _blob(value: Any) -> str:
    """Canonical JSON of ``value`` (plain data, sorted keys): what content keys are made of."""
    return json.dumps(_plainify(value), sort_keys=True, default=str, separators=(",", ":"))


def _hash(*parts: Any) -> str:
    return hashlib.sha256(_blob(parts).encode()).hexdigest()


def _hash_blobs(*blobs: str) -> str:
    """One key over canonical JSON texts (the separator never occurs in JSON: it is escaped)."""
    return hashlib.sha256("\x1f".join(blobs).encode()).hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the code that shapes a render (components, render, runtime, SDK versions):
    a cached graph is only reused by the code that made it."""
    from importlib.metadata import version

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    files = sorted((here.parent / "components").glob("*.py")) + [here / "render.py", here / "runtime.py",
                                                                  here / "resolved.py"]
    for path in files:
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    for dist in ("pulumi", "pulumi_aws"):
        try:
            h.update(f"{dist}={version(dist)}".encode())
        except Exception:  # noqa: BLE001 - a missing distribution only weakens the key
            h.update(dist.encode())
    return h.hexdigest()


def _keyed(model: Any) -> Any:
    """A model as its render depends on it. Components read the attached artifact (path and
    digest), never ``artifact_source``: that path differs between the two sides of a diff
    (the base lives in a temporary checkout) and would make every base render a miss."""
    if getattr(model, "artifact_source", None) is None:
        return model
    return dataclasses.replace(model, artifact_source=None)


_PLACEHOLDER = "modelops-cached-secret:"


def _secrets_of(env: Environment) -> tuple[str, ...]:
    """Every URL in the environment's settings that may carry a credential (webhook endpoints)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if SECRET_URL.match(value):
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(RenderCache._settings(env))
    return tuple(sorted(found, key=len, reverse=True))


def _placeholder(secret: str) -> str:
    return _PLACEHOLDER + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]


def _swap(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in table.items():
            if old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _swap(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, table) for v in value]
    if isinstance(value, tuple):
        return tuple(_swap(v, table) for v in value)
    return value


def _mask_secrets(regs: list[Registration], secrets: tuple[str, ...]) -> list[Registration]:
    if not secrets:
        return regs
    table = {s: _placeholder(s) for s in secrets}
    return [dataclasses.replace(r, inputs=_swap(r.inputs, table), outputs=_swap(r.outputs, table)) for r in regs]


def _unmask_secrets(regs: list[Registration], table: dict[str, str]) -> list[Registration]:
    return [dataclasses.replace(r, inputs=_swap(r.inputs, table), outputs=_swap(r.outputs, table)) for r in regs]


#: names of entries being written (with the process id): no two writers share one
_TMP_NAMES = itertools.count()


class RenderCache:
    """Renders cached by content, per spec entity, so a one-model change re-renders one model.

    A graph splits into groups: one per dataset, model and monitor (the entity's component
    and everything under it) and one *shared* group (key, artifact bucket, catalogue,
    topics, dashboard). Each group is keyed by the content it depends on:

    * environment settings (project, env, region, encryption, protect, tags, channels),
    * a model: itself and its dataset; a monitor: itself and what it watches (model and its
      dataset, or a dataset); a dataset: itself, the names of the models reading it (their
      grants live under the dataset) and its monitors (freshness adds request metrics),
    * shared: the settings and the *shape* of the spec (which entities exist and what they
      point at; the dashboard lists them),

    plus :func:`code_fingerprint`. A miss of the shared group renders the environment in
    full; otherwise only the missing entities are rendered, together, in a sub-environment
    holding them and what they depend on. Groups live in an in-process LRU and, with a
    ``cache_dir``, on disk (``.modelops/cache/render/FINGERPRINT``); writing removes the
    entries other code versions left there.

    Example::

        graph = RenderCache().render(env, Path(".modelops/cache"))
    """

    def __init__(self, max_groups: int = 20_000) -> None:
        self._lru: OrderedDict[str, list[Registration]] = OrderedDict()
        self._max = max_groups
        self._lock = threading.Lock()
        self._pruned: set[str] = set()
        #: renders done (full, partial): lets tests see which path a render took
        self.stats = {"full": 0, "partial": 0, "hit": 0}

    # -- keys ------------------------------------------------------------------------------

    @staticmethod
    def _settings(env: Environment) -> dict[str, Any]:
        """Everything but the entities (and the file names): what every group depends on."""
        return {f.name: _plainify(getattr(env, f.name)) for f in dataclasses.fields(env)
                if f.name not in ("datasets", "models", "monitors", "spec_file", "overlay_file")}

    def keys(self, env: Environment) -> dict[tuple[str, str], str]:
        """(kind, entity) → content key of its group; ``("shared", "")`` for the shared group."""
        fp = code_fingerprint()
        settings = self._settings(env)
        shape = {
            "datasets": sorted(env.datasets),
            "models": sorted((m.name, m.dataset) for m in env.models.values()),
            "monitors": sorted((m.name, m.model or "", m.dataset or "", m.metric) for m in env.monitors.values()),
        }
        keys = {("shared", ""): _hash(fp, "shared", settings, shape)}
        # Every entity's key holds the settings and what it depends on. Each entity is turned
        # into canonical JSON once (a dataset is read by models and monitors, a model by its
        # monitors) and a key hashes those texts: O(entities), not O(entities x dependants).
        common = _hash(fp, settings)
        datasets = {name: _blob(ds) for name, ds in env.datasets.items()}
        models = {name: _blob(_keyed(m)) for name, m in env.models.items()}
        readers: dict[str, list[str]] = {}
        watchers: dict[str, list[tuple[str, str]]] = {}
        model_watchers: dict[str, list[tuple[str, str]]] = {}
        for m in env.models.values():
            readers.setdefault(m.dataset, []).append(m.name)
        for mon in env.monitors.values():
            if mon.dataset is not None:
                watchers.setdefault(mon.dataset, []).append((mon.name, mon.metric))
            else:
                # a model's endpoint rolls back on its monitors' alarms: it depends on their names and metrics
                model_watchers.setdefault(mon.model or "", []).append((mon.name, mon.metric))
        for name in env.datasets:
            keys[("dataset", name)] = _hash_blobs(common, "dataset", datasets[name],
                                                  _blob([sorted(readers.get(name, ())), sorted(watchers.get(name, ()))]))
        for name, model in env.models.items():
            keys[("model", name)] = _hash_blobs(common, "model", models[name], datasets.get(model.dataset, "null"),
                                                _blob(sorted(model_watchers.get(name, ()))))
        for name, mon in env.monitors.items():
            target = env.models.get(mon.model) if mon.model is not None else None
            target_ds = datasets.get(target.dataset if target is not None else (mon.dataset or ""), "null")
            keys[("monitor", name)] = _hash_blobs(common, "monitor", _blob(mon),
                                                  models[mon.model] if target is not None else "null", target_ds)
        return keys

    # -- storage ---------------------------------------------------------------------------

    @staticmethod
    def entry_path(cache_dir: Path | str, key: str) -> str:
        """Where the entry ``key`` lives: under the fingerprint of the code that renders
        (:func:`code_fingerprint`), so entries of other code versions can be removed whole."""
        return os.path.join(cache_dir, "render", code_fingerprint()[:16], key[:2], key + ".pickle")

    def _prune(self, cache_dir: Path | str) -> None:
        """Remove what other code versions left under ``cache_dir/render`` (their entries are
        never read again: every key holds the code's fingerprint). Once per process and
        directory, when entries are written; a directory another process is still writing
        into only costs that process its entries."""
        base = os.path.join(cache_dir, "render")
        with self._lock:
            if base in self._pruned:
                return
            self._pruned.add(base)
        current = code_fingerprint()[:16]
        try:
            names = os.listdir(base)
        except OSError:
            return
        for name in names:
            if name != current and not name.startswith("."):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)

    def _get(self, key: str, cache_dir: Path | None, secrets: tuple[str, ...] = ()) -> list[Registration] | None:
        with self._lock:
            if key in self._lru:
                self._lru.move_to_end(key)
                return self._lru[key]
        if cache_dir is not None:
            import pickle

            try:
                with open(self.entry_path(cache_dir, key), "rb") as handle:
                    raw = handle.read()
            except OSError:  # not cached (or unreadable): a miss
                return None
            try:
                regs = [Registration(*row) for row in pickle.loads(raw)]
                if _PLACEHOLDER.encode() in raw:
                    # the key covers the settings, secrets included: the spec holds each one
                    regs = _unmask_secrets(regs, {_placeholder(v): v for v in secrets})
            except Exception:  # noqa: BLE001 - a damaged cache entry (or an unknown secret) is a miss
                return None
            self._put_many([(key, regs)], None)
            return regs
        return None

    def _put_many(self, entries: list[tuple[str, list[Registration]]], cache_dir: Path | None,
                  secrets: tuple[str, ...] = ()) -> None:
        """Keep ``entries`` (key, group) in the LRU and, with a ``cache_dir``, on disk: each
        written whole under a name of its own, then renamed into place (a reader never sees
        half an entry). Plain string paths and one directory check per directory: a
        1,000-model render writes some 5,000 entries."""
        with self._lock:
            for key, regs in entries:
                self._lru[key] = regs
                self._lru.move_to_end(key)
            while len(self._lru) > self._max:
                self._lru.popitem(last=False)
        if cache_dir is None:
            return
        import pickle

        self._prune(cache_dir)
        made: set[str] = set()
        for key, regs in entries:
            final = self.entry_path(cache_dir, key)
            folder = os.path.dirname(final)
            tmp = os.path.join(folder, f".{key}.{os.getpid()}.{next(_TMP_NAMES)}.tmp")
            try:
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)
                    made.add(folder)
                # secrets (webhook URLs) never reach the disk: a placeholder stands in, and
                # the spec being rendered supplies the value when the entry is read back;
                # as rows of field values: read back about six times faster than the objects
                rows = [r.row() for r in _mask_secrets(regs, secrets)]
                with open(tmp, "xb") as handle:
                    pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, final)
            except (OSError, pickle.PicklingError, TypeError, AttributeError):
                with contextlib.suppress(OSError):  # the cache is an optimisation: an unwritable one only costs time
                    os.unlink(tmp)

    # -- rendering -------------------------------------------------------------------------

    @staticmethod
    def _groups(graph: Any) -> dict[tuple[str, str], list[Registration]]:
        """Every registration (components too) by the entity group it belongs to."""
        groups: dict[tuple[str, str], list[Registration]] = {}
        by_urn = {r.urn: r for r in graph.registrations}
        memo: dict[str, tuple[str, str]] = {}

        def group_of(reg: Registration) -> tuple[str, str]:
            # the nearest entity component up the parent chain (as Graph.entity_of), memoised
            if reg.urn in memo:
                return memo[reg.urn]
            if not reg.custom and reg.name in graph.entities:
                found = graph.entities[reg.name]
            else:
                parent = by_urn.get(reg.parent)
                found = group_of(parent) if parent is not None else ("shared", "")
            memo[reg.urn] = found
            return found

        for reg in graph.registrations:
            kind, name = group_of(reg)
            key = ("shared", "") if kind == "shared" else (kind, name)
            groups.setdefault(key, []).append(reg)
        return groups

    @staticmethod
    def _closure(env: Environment, wanted: set[tuple[str, str]]) -> tuple[Environment, set[tuple[str, str]]]:
        """A sub-environment holding ``wanted`` and what each depends on; and which groups in it are complete."""
        ds, ms, mons = set(), set(), set()
        for kind, name in wanted:
            if kind == "dataset":
                ds.add(name)
                ms.update(m.name for m in env.models.values() if m.dataset == name)
                mons.update(m.name for m in env.monitors.values() if m.dataset == name)
            elif kind == "model":
                ms.add(name)
            elif kind == "monitor":
                mon = env.monitors[name]
                mons.add(name)
                if mon.model:
                    ms.add(mon.model)
                if mon.dataset:
                    ds.add(mon.dataset)
        # a model's endpoint lists its monitors' alarms (rollback): its monitors render with it
        mons.update(m.name for m in env.monitors.values() if m.model in ms)
        ds.update(env.models[m].dataset for m in ms if env.models[m].dataset in env.datasets)
        sub = dataclasses.replace(
            env,
            datasets={k: v for k, v in env.datasets.items() if k in ds},
            models={k: v for k, v in env.models.items() if k in ms},
            monitors={k: v for k, v in env.monitors.items() if k in mons},
        )
        complete = {("model", m) for m in ms} | {("monitor", m) for m in mons}
        complete |= {
            ("dataset", d) for d in ds
            if all(m.name in ms for m in env.models.values() if m.dataset == d)
            and all(m.name in mons for m in env.monitors.values() if m.dataset == d)
        }
        return sub, complete

    def render(self, env: Environment, cache_dir: Path | None = None, *, jobs: int | None = None,
               collect: bool = True) -> Any:
        """The :class:`~modelops.render.Graph` of ``env``, re-rendering only groups not cached
        (in up to ``jobs`` processes; ``collect`` as in :func:`modelops.render.render`)."""
        from components.environment import component_entities
        from components.naming import prefix
        from modelops.render import Graph, render

        with no_gc():  # thousands of acyclic lists and dicts: collections would only rescan them
            keys = self.keys(env)
            secrets = _secrets_of(env)
            # without the shared group the render is a full one: the entities' entries are not read
            shared = self._get(keys[("shared", "")], cache_dir, secrets)
            found = ({group: self._get(key, cache_dir, secrets) for group, key in keys.items()}
                     if shared is not None else dict.fromkeys(keys))
        missing = {g for g, regs in found.items() if regs is None}
        if shared is None:
            graph = render(env, jobs=jobs, collect=collect)
            self.stats["full"] += 1
            self._put_many([(keys[group], regs) for group, regs in self._groups(graph).items() if group in keys],
                           cache_dir, secrets)
            return graph
        if missing:
            sub, complete = self._closure(env, missing)
            self.stats["partial"] += 1
            rendered = [(group, regs) for group, regs in self._groups(render(sub, jobs=jobs, collect=collect)).items()
                        if group in complete and group in keys]
            self._put_many([(keys[group], regs) for group, regs in rendered], cache_dir, secrets)
            for group, regs in rendered:
                if group in missing:
                    found[group] = regs
        else:
            self.stats["hit"] += 1
        with no_gc():
            registrations = sorted((r for regs in found.values() for r in regs or []), key=lambda r: r.urn)
        return Graph(project=env.project, stack=env.env, registrations=registrations,
                     entities=component_entities(prefix(env.project, env.env), env))


RENDER_CACHE = RenderCache()


# ---------------------------------------------------------------- comparing


def _normalise(value: Any, roots: tuple[str, ...]) -> Any:
    """Comparable plain data: assets by content, paths relative to their side's root, secrets hashed."""
    from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

    if is_rpc_secret(value):
        # compared by a short hash: a changed secret shows as changed, never as its value
        inner = json.dumps(_normalise(unwrap_rpc_secret(value), roots), sort_keys=True, default=str)
        return f"[secret #{hashlib.sha256(inner.encode()).hexdigest()[:6]}]"
    if isinstance(value, dict):
        return {k: _normalise(v, roots) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, (list, tuple)):
        return [_normalise(v, roots) for v in value]
    path = getattr(value, "path", None)
    if path is not None and type(value).__name__.endswith(("Asset", "Archive")):
        return {"asset": _file_digest(str(path)) or os.path.basename(str(path))}
    if isinstance(value, str):
        for root in roots:
            if root and root in value:
                value = value.replace(root, "<root>")
        return value
    return value


def _content(env: Environment, roots: tuple[str, ...]) -> str:
    """The environment as canonical JSON, paths under either root written ``<root>``."""
    text = _blob({f.name: getattr(env, f.name) for f in dataclasses.fields(env)
                  if f.name not in ("spec_file", "overlay_file")})
    for root in roots:
        if root:
            text = text.replace(json.dumps(root)[1:-1], "<root>")
    return text


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """Leaf-level differences between two plain values, as ``path: old → new``."""
    a, b = _flat(old), _flat(new)
    return [FieldChange(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _viewed(value: Any, roots: tuple[str, ...], mask: bool) -> Any:
    """Plain entity data as a review shows it: URLs masked (``mask``), paths relative to the roots."""
    if isinstance(value, str):
        if mask and "https://" in value:
            value = _HTTPS.sub("https://***", value)
        for root in roots:
            if root and root in value:
                value = value.replace(root, "<root>")
        return value
    if isinstance(value, dict):
        return {k: _viewed(v, roots, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_viewed(v, roots, mask) for v in value]
    return value


def _entity_view(env: Environment, root: Path) -> dict[str, dict[str, Any]]:
    roots = (str(root),)
    views: dict[str, dict[str, Any]] = {}
    for kind in ENTITY_KINDS:
        items = {}
        for name, entity in getattr(env, kind).items():
            ent = _plainify(entity)
            for key in ("source", "artifact_source"):
                if isinstance(ent.get(key), str) and os.path.isabs(ent[key]):
                    # as the spec writes it: relative to the spec's directory, on either side
                    ent[key] = os.path.relpath(ent[key], root)
            if kind == "models" and ent.get("artifact"):
                ent["artifact"] = {"digest": ent["artifact"]["digest"],
                                   "framework_version": ent["artifact"]["framework_version"]}
            if kind == "channels" and ent.get("https"):
                # a changed webhook is visible as changed, never as its URL
                ent["https"] = [f"https://*** (#{hashlib.sha256(u.encode()).hexdigest()[:6]})" for u in ent["https"]]
            items[str(name)] = _viewed(ent, roots, mask=kind != "channels")
        views[kind] = items
    views["settings"] = _viewed({k: _plainify(getattr(env, k)) for k in ("region", "encryption", "protect", "tags",
                                                                          "policies", "owner")}, (), mask=True)
    return views


def entity_changes(before: Environment | None, after: Environment | None,
                   before_root: Path, after_root: Path) -> tuple[list[EntityChange], list[FieldChange]]:
    a = _entity_view(before, before_root) if before else {k: {} for k in ENTITY_KINDS} | {"settings": {}}
    b = _entity_view(after, after_root) if after else {k: {} for k in ENTITY_KINDS} | {"settings": {}}
    changes = []
    for kind in ENTITY_KINDS:
        for name in sorted(set(a[kind]) | set(b[kind])):
            if name not in a[kind]:
                changes.append(EntityChange(kind, name, "added"))
            elif name not in b[kind]:
                changes.append(EntityChange(kind, name, "removed"))
            elif a[kind][name] != b[kind][name]:
                changes.append(EntityChange(kind, name, "changed", tuple(field_changes(a[kind][name], b[kind][name]))))
    settings = field_changes(a["settings"], b["settings"]) if before and after else []
    return changes, settings


def _logical_key(reg: Registration) -> str:
    """The URN with a content hash suffix removed: old and new versions of one resource match."""
    head, _, name = reg.urn.rpartition("::")
    return f"{head}::{_HASH_SUFFIX.sub('', name)}"


def _top_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def resource_changes(before: list[Registration], after: list[Registration],
                     before_roots: tuple[str, ...], after_roots: tuple[str, ...],
                     env_after: Environment | None, env_before: Environment | None
                     ) -> tuple[list[ResourceChange], dict[str, tuple[Registration | None, Registration | None]]]:
    """Classify every custom resource; returns the changes and the (old, new) pair of each."""
    old = {r.urn: r for r in before if r.custom}
    new = {r.urn: r for r in after if r.custom}
    pairs: dict[str, tuple[Registration | None, Registration | None]] = {}
    for urn in set(old) | set(new):
        pairs[urn] = (old.get(urn), new.get(urn))
    # pair deletes with creates of the same logical resource (content-named SageMaker objects)
    gone = {_logical_key(old[u]): u for u in old if u not in new}
    for urn in [u for u in new if u not in old]:
        key = _logical_key(new[urn])
        if key in gone:
            old_urn = gone.pop(key)
            pairs.pop(old_urn, None)
            pairs[urn] = (old[old_urn], new[urn])
    before_map = {r.urn: r for r in before}
    after_map = {r.urn: r for r in after}
    changes = []
    for urn, (a, b) in sorted(pairs.items()):
        if a is None:
            assert b is not None
            changes.append(ResourceChange(b.urn, b.type, b.name, "create", entity_of(b, after_map, env_after)))
            continue
        if b is None:
            changes.append(ResourceChange(a.urn, a.type, a.name, "delete", entity_of(a, before_map, env_before)))
            continue
        if a is b:  # one cached render serves both sides (same content key): nothing changed
            continue
        ia, ib = _normalise(a.inputs, before_roots), _normalise(b.inputs, after_roots)
        keys = _top_changes(ia, ib)
        renamed = (a.name, b.name) if a.urn != b.urn else None
        # resource options change the stack's state without touching AWS: shown as updates
        options = [f"{opt}: {str(getattr(a, attr)).lower()} → {str(getattr(b, attr)).lower()}"
                   for opt, attr in (("protect", "protect"), ("retainOnDelete", "retain_on_delete"))
                   if getattr(a, attr) != getattr(b, attr)]
        if not keys and not renamed:
            if options:
                changes.append(ResourceChange(b.urn, b.type, b.name, "update", entity_of(b, after_map, env_after),
                                              tuple(options)))
            continue
        forcing, every = replace_keys(b.type)
        forced = [k for k in keys if (every and k not in TAG_KEYS) or k in forcing or k in b.replace_on_changes]
        if renamed and not forced:
            forced = ["name"]
        detail = [fc.path for fc in field_changes({k: ia.get(k) for k in keys}, {k: ib.get(k) for k in keys})]
        if forced:
            # the content-derived name changes because something else did: show that first
            first = [p for p in detail if p.split(".")[0].split("[")[0] in forced and p != "name"]
            causes = tuple(first + [p for p in detail if p not in first])
            changes.append(ResourceChange(b.urn, b.type, b.name, "replace", entity_of(b, after_map, env_after),
                                          causes[:8], renamed))
        else:
            changes.append(ResourceChange(b.urn, b.type, b.name, "update", entity_of(b, after_map, env_after),
                                          tuple(detail[:8])))
    order = {a: i for i, a in enumerate(("delete", "replace", "update", "create"))}
    changes.sort(key=lambda c: (order[c.action], c.entity, c.type, c.name))
    return changes, pairs


# ---------------------------------------------------------------- risks


def _grants(document: Any) -> set[tuple[str, str, str]]:
    """(principal, action, resource) triples an Allow statement grants."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return set()
    if not isinstance(document, dict):
        return set()
    out = set()
    statements = document.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        principal = json.dumps(st.get("Principal"), sort_keys=True) if st.get("Principal") is not None else ""
        actions = st.get("Action") or st.get("NotAction") or []
        res = st.get("Resource") or st.get("NotResource") or ["*"]
        for act in actions if isinstance(actions, list) else [actions]:
            for r in res if isinstance(res, list) else [res]:
                out.add((principal, str(act).lower(), str(r)))
    return out


def widened(old_doc: Any, new_doc: Any) -> list[tuple[str, str, str]]:
    """Grants of ``new_doc`` that no grant of ``old_doc`` already covers (wildcards honoured)."""
    old = _grants(old_doc)
    return sorted(
        g for g in _grants(new_doc)
        if not any(g[0] == o[0] and fnmatch.fnmatchcase(g[1], o[1]) and fnmatch.fnmatchcase(g[2], o[2]) for o in old)
    )


def _instances(reg: Registration | None) -> int:
    if reg is None:
        return 0
    return sum(int(v.get("initialInstanceCount") or 0) for v in reg.inputs.get("productionVariants") or []
               if isinstance(v, dict))


def risk_flags(changes: list[ResourceChange], pairs: dict[str, tuple[Registration | None, Registration | None]],
               entities: list[EntityChange], settings: list[FieldChange]) -> list[Flag]:
    flags: list[Flag] = []
    # roles that exist before the change: a policy newly attached to one widens what it may do
    existing_roles = {a.inputs.get("name") for a, _ in pairs.values() if a is not None and a.type == ROLE}
    existing_roles |= {a.inputs.get("role") for a, _ in pairs.values()
                       if a is not None and a.type == "aws:iam/rolePolicy:RolePolicy"}
    existing_roles.discard(None)
    for c in changes:
        a, b = pairs.get(c.urn, (None, None))
        if c.action == "delete":
            a = a or next((p[0] for p in pairs.values() if p[0] is not None and p[0].urn == c.urn), None)
        if c.type in (BUCKET, KMS_KEY) and c.action in ("delete", "replace"):
            was = a or b
            what = "storage" if c.type == BUCKET else "encryption key"
            if was is not None and was.retain_on_delete and c.action == "delete":
                reason = (f"{what} {c.name} leaves the stack; it is retained in AWS (retain on delete), "
                          "no longer managed")
                if was.protect:
                    reason += "; it is protected, so `pulumi up` refuses until protection is lifted"
            else:
                verb = "deleted" if c.action == "delete" else f"replaced ({', '.join(c.causes) or 'name'})"
                reason = (f"{what} {c.name} is {verb}: its objects are gone" if c.type == BUCKET
                          else f"KMS key {c.name} is {verb}: data encrypted with it becomes unreadable after the waiting period")
            flags.append(Flag("data-loss", c.entity, c.urn, reason))
        if c.type == ENDPOINT:
            if c.action == "replace":
                flags.append(Flag("endpoint-replaced", c.entity, c.urn,
                                  f"the endpoint is deleted and created again ({', '.join(c.causes)}): "
                                  "requests fail until the new one is InService"))
            elif c.action == "delete":
                flags.append(Flag("endpoint-replaced", c.entity, c.urn, "the endpoint is deleted: clients lose it"))
            elif c.action == "update" and any(p.startswith("endpointConfigName") for p in c.causes):
                flags.append(Flag("endpoint-updated", c.entity, c.urn,
                                  "new endpoint configuration deployed in place (blue/green): traffic shifts "
                                  "to the new fleet, no downtime"))
        if c.type == ENDPOINT_CONFIG and a is not None and b is not None and _instances(b) < _instances(a):
            flags.append(Flag("capacity-reset", c.entity, c.urn,
                              f"instances lowered from {_instances(a)} to {_instances(b)}"))
        if c.type == SCALING_TARGET:
            if c.action == "delete":
                flags.append(Flag("capacity-reset", c.entity, c.urn,
                                  "autoscaling removed: the endpoint stays at its configured instance count"))
            elif a is not None and b is not None:
                for key in ("minCapacity", "maxCapacity"):
                    low, high = a.inputs.get(key), b.inputs.get(key)
                    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and high < low:
                        flags.append(Flag("capacity-reset", c.entity, c.urn, f"autoscaling {key} lowered from {low:g} to {high:g}"))
        if c.type == METRIC_ALARM and c.action == "delete":
            flags.append(Flag("monitor-removed", c.entity, c.urn, f"alarm {c.name} is deleted: nobody is told when it would fire"))
        if c.type in POLICY_TYPES and a is not None and b is not None:
            key = POLICY_TYPES[c.type]
            extra = widened(a.inputs.get(key), b.inputs.get(key))
            if extra:
                shown = ", ".join(f"{act} on {res}" for _, act, res in extra[:4])
                more = f" (+{len(extra) - 4} more)" if len(extra) > 4 else ""
                flags.append(Flag("permission-widened", c.entity, c.urn, f"now also allows {shown}{more}"))
        if c.type == "aws:iam/rolePolicy:RolePolicy" and c.action == "create" and b is not None \
                and b.inputs.get("role") in existing_roles:
            extra = widened(None, b.inputs.get("policy"))
            shown = ", ".join(f"{act} on {res}" for _, act, res in extra[:4])
            more = f" (+{len(extra) - 4} more)" if len(extra) > 4 else ""
            flags.append(Flag("permission-widened", c.entity, c.urn,
                              f"existing role {b.inputs.get('role')} gains a policy: {shown}{more}"))
        if a is not None and b is not None:
            if a.protect and not b.protect:
                flags.append(Flag("protection-removed", c.entity, c.urn, f"{c.type.split(':')[-1]} {c.name} is no longer protected"))
            elif a.retain_on_delete and not b.retain_on_delete:
                flags.append(Flag("protection-removed", c.entity, c.urn,
                                  f"{c.type.split(':')[-1]} {c.name} is no longer retained on delete"))
    for s in settings:
        if s.path == "protect" and s.old and not s.new:
            flags.append(Flag("protection-removed", "protect", "", "protect: true → false: stateful resources can be deleted"))
    for e in entities:
        if e.kind == "monitors" and e.action == "removed" and not any(f.kind == "monitor-removed" and f.entity == f"monitors.{e.name}" for f in flags):
            flags.append(Flag("monitor-removed", f"monitors.{e.name}", "", "the monitor is removed from the spec"))
    unique = {(f.kind, f.entity, f.resource, f.reason): f for f in flags}
    return list(unique.values())


# ---------------------------------------------------------------- the review


def parse_fail_on(text: str | Iterable[str] | None) -> list[str]:
    """``data-loss,replace,policy,cost>100`` → kinds; an unknown kind is a UsageError (exit 2)."""
    if not text:
        return []
    items = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p and p.strip()]
    for item in items:
        if item.startswith("cost>"):
            try:
                float(item[5:])
            except ValueError:
                raise UsageError(f"--fail-on {item}: expected cost>N with N in USD per month, e.g. cost>100") from None
        elif item not in FAIL_KINDS:
            raise UsageError(f"--fail-on {item}: unknown condition; use one of {', '.join(FAIL_KINDS)}, cost>N")
    return items


def diff(spec: str | os.PathLike[str], base: str, *, envs: list[str] | None = None,
         store_root: Path | None = None) -> DiffReport:
    """Review the change from ``base`` (git ref or directory) to the working-tree ``spec``.

    Example::

        report = diff("modelops.yaml", "origin/main", envs=["prod"])
        report.failed_conditions(["data-loss"])
    """
    from modelops.render import PARALLEL_MIN_MODELS, process_budget

    head_spec = Path(spec).resolve()
    if not head_spec.is_file():
        raise UsageError(f"{spec}: no such spec file; pass the path of modelops.yaml")
    head_root = head_spec.parent
    store_root = store_root or head_root
    with tempfile.TemporaryDirectory(prefix="modelops-diff-") as tmp:
        scratch = Path(tmp)

        def load_base(base_spec: Path) -> dict[str, Environment]:
            try:
                return _environments(base_spec, envs)
            except ModelOpsError as exc:
                # name the base version, not the temporary directory it was extracted to
                first = str(exc).splitlines()[0].replace(str(scratch / "base"), f"<{base}>")
                raise UsageError(f"the base version ({base}) does not load: {first}; "
                                 "compare with another --base") from exc

        def base_side() -> tuple[Path, dict[str, Environment]]:
            base_spec, base_root = materialise_base(base, head_spec, scratch)
            return base_root, load_base(base_spec)

        sides = None
        if head_spec.stat().st_size >= PARALLEL_LOAD_BYTES and process_budget(PARALLEL_MIN_MODELS) > 1:
            # a large spec: the base is checked out and loaded in a forked process meanwhile
            # (any failure there: the same steps again here, which report it as usual)
            sides = fork_map(lambda side: side(), [lambda: _environments(head_spec, envs), base_side])
        if sides is None:
            base_spec, base_root = materialise_base(base, head_spec, scratch)
            head_envs = _environments(head_spec, envs)
            base_envs = load_base(base_spec)
        else:
            head_envs, (base_root, base_envs) = sides
        if envs:
            missing = [e for e in envs if e not in head_envs and e not in base_envs]
            if missing:
                raise UsageError(f"--env {', '.join(missing)}: no such environment in {spec} or at {base}")
        report = DiffReport(spec=str(spec), base=base, head="working tree")
        # environments of 32 models or more are reviewed in several processes (Linux): the same review
        pairs = [(name, base_envs.get(name), head_envs.get(name)) for name in sorted(set(head_envs) | set(base_envs))]
        base_root = base_root.resolve()

        def review(chunk: list[tuple[str, Environment | None, Environment | None]], jobs: int | None) -> list[EnvDiff]:
            return [_diff_env(name, before, after, base_root, head_root, store_root, scratch, jobs=jobs)
                    for name, before, after in chunk]

        models = max((len(env.models) for _, *both in pairs for env in both if env is not None), default=0)
        report.envs = share_out(review, pairs, models)
    return report


def _diff_env(name: str, before: Environment | None, after: Environment | None, base_root: Path, head_root: Path,
              store_root: Path, scratch: Path, *, jobs: int | None = None) -> EnvDiff:
    status = "added" if before is None else "removed" if after is None else "changed"
    result = EnvDiff(env=name, status=status)
    unbuilt: list[str] = []
    # The cyclic collector is paused while comparing: everything built here is acyclic plain
    # data, and with two graphs alive each collection would rescan them. Renders (the
    # Pulumi program) run with it on.
    with no_gc():
        if before is not None:
            before, _ = attach_without_training(before, store_root, scratch)
        if after is not None:
            after, unbuilt = attach_without_training(after, store_root, scratch)
        result.unbuilt = unbuilt
        result.entities, result.settings = entity_changes(before, after, base_root, head_root)
    cache_dir = store_root / ".modelops" / "cache"
    roots_before = (str(base_root), str(scratch))
    roots_after = (str(head_root), str(scratch))
    graph_after = render_graph(after, cache_dir, jobs=jobs) if after is not None else []
    with no_gc():
        # a changed entity or setting is a changed content: the comparison is for the rest
        same = before is not None and after is not None and not (result.entities or result.settings) \
            and _content(before, roots_before) == _content(after, roots_after)
    if same:
        # the same content at another place (paths differ only by their root): the same graph
        graph_before = graph_after
    else:
        graph_before = render_graph(before, cache_dir, jobs=jobs) if before is not None else []
    with no_gc():
        result.resources, pairs = resource_changes(graph_before, graph_after, roots_before, roots_after, after, before)
        result.flags = risk_flags(result.resources, pairs, result.entities, result.settings)
        if before is not None:
            result.cost_before = estimate(graph_before, before.region)
        if after is not None:
            result.cost_after = estimate(graph_after, after.region)
            result.findings = evaluate(after, graph_after)
            old = {(f.policy, f.entity, f.message) for f in (evaluate(before, graph_before) if before else [])}
            result.new_findings = [f for f in result.findings if (f.policy, f.entity, f.message) not in old]
    if status == "changed" and not (result.entities or result.resources or result.settings):
        result.status = "unchanged"
    result._before = before  # type: ignore[attr-defined]  # for the Mermaid diagram
    result._after = after  # type: ignore[attr-defined]
    return result
