"""Risk flags of a change: what a reviewer must not miss (data loss, an endpoint replaced,
capacity reset, a monitor removed, a permission widened, protection removed).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from modelops.graph.resource_types import (BUCKET, ENDPOINT, ENDPOINT_CONFIG, KMS_KEY, METRIC_ALARM,
                                           POLICY_DOCUMENT_INPUT, ROLE, ROLE_POLICY, SCALING_TARGET)
from modelops.graph.runtime import Registration
from modelops.review.report import EntityChange, FieldChange, Flag, ResourceChange


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
                       if a is not None and a.type == ROLE_POLICY}
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
        if c.type in POLICY_DOCUMENT_INPUT and a is not None and b is not None:
            key = POLICY_DOCUMENT_INPUT[c.type]
            extra = widened(a.inputs.get(key), b.inputs.get(key))
            if extra:
                shown = ", ".join(f"{act} on {res}" for _, act, res in extra[:4])
                more = f" (+{len(extra) - 4} more)" if len(extra) > 4 else ""
                flags.append(Flag("permission-widened", c.entity, c.urn, f"now also allows {shown}{more}"))
        if c.type == ROLE_POLICY and c.action == "create" and b is not None \
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
