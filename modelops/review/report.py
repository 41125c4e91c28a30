"""The data of a pull-request review: what changed per environment, and its risk flags.

Formats (text, Markdown, Mermaid) live in :mod:`modelops.review.formats`; this module
knows none of them. The JSON form is the data itself (:meth:`DiffReport.to_json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from modelops.checks.policy import Finding
from modelops.errors import UsageError
from modelops.review.cost import CostReport

ACTIONS = ("create", "update", "replace", "delete")

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
    #: the Pulumi stacks the change touches (what a deploy runs ``pulumi up`` on), shared first
    stacks: list[str] = field(default_factory=list)

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
            "stacks": list(self.stacks),
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

    def summary_lines(self) -> list[str]:
        lines = []
        for e in self.envs:
            if not e.changed:
                continue
            c = e.counts()
            parts = [f"{n} {a}" for a, n in c.items() if n]
            ents = f"{len(e.entities)} entit{'y' if len(e.entities) == 1 else 'ies'} changed"
            cost = money_delta(e)
            mand = sum(1 for f in e.findings if f.level == "mandatory")
            pol = f"{mand} mandatory policy finding(s)" if mand else "policies ok"
            status = {"added": " (new environment)", "removed": " (environment removed)"}.get(e.status, "")
            lines.append(f"{e.env}{status}: {ents}; resources: {', '.join(parts) or 'none'}; {cost}; {pol}")
        return lines


def money_delta(e: EnvDiff) -> str:
    before = e.cost_before.total_monthly if e.cost_before else 0.0
    after = e.cost_after.total_monthly if e.cost_after else 0.0
    sign = "+" if e.cost_delta >= 0 else "−"
    approx = "~" if (e.cost_after and e.cost_after.approximate) or (e.cost_before and e.cost_before.approximate) else ""
    extra = ""
    if e.cost_after and e.cost_after.unpriced:
        extra = f", {len(e.cost_after.unpriced)} unpriced"
    return f"cost {approx}${before:,.2f} → {approx}${after:,.2f}/month ({sign}${abs(e.cost_delta):,.2f}{extra}, usage-based extra)"


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


def _show(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= 120 else text[:117] + "…"
