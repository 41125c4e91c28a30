"""Comparing two sides of a review: entities field by field, resources by action
(create, update, replace, delete) with the inputs that caused it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from modelops.checks.policy import entity_of
from modelops.files import unchanged_file_digest
from modelops.graph.resource_types import replace_keys
from modelops.graph.runtime import Registration
from modelops.graph.split import stacked_urn
from modelops.plain import canonical, plain
from modelops.review.report import EntityChange, FieldChange, ResourceChange
from modelops.secrets import MASK
from modelops.secrets import mask as secrets_mask
from modelops.spec.resolved import ENTITY_KINDS, Environment

_ATTRS = tuple(k.attr for k in ENTITY_KINDS)

TAG_KEYS = ("tags", "tagsAll")
_HASH_SUFFIX = re.compile(r"-[0-9a-f]{8}$")


def _asset_digest(path: str) -> str:
    try:
        return unchanged_file_digest(path)
    except OSError:
        return os.path.basename(path)


def _normalise(value: Any, roots: tuple[str, ...]) -> Any:
    """Comparable plain data: assets by content, paths relative to their side's root, secrets hashed."""
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
        return {"asset": _asset_digest(str(path))}
    if isinstance(value, str):
        for root in roots:
            if root and root in value:
                value = value.replace(root, "<root>")
        return value
    return value


def content(env: Environment, roots: tuple[str, ...]) -> str:
    """The environment as canonical JSON, paths under either root written ``<root>``."""
    text = canonical({f.name: getattr(env, f.name) for f in dataclasses.fields(env)
                  if f.name not in ("spec_file", "overlay_file", "include_files")})
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
        if mask:
            value = secrets_mask(value)
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
    for kind in _ATTRS:
        items = {}
        for name, entity in getattr(env, kind).items():
            ent = plain(entity)
            for key in ("source", "artifact_source"):
                if isinstance(ent.get(key), str) and os.path.isabs(ent[key]):
                    # as the spec writes it: relative to the spec's directory, on either side
                    ent[key] = os.path.relpath(ent[key], root)
            if kind == "models" and ent.get("artifact"):
                ent["artifact"] = {"digest": ent["artifact"]["digest"],
                                   "framework_version": ent["artifact"]["framework_version"]}
            if kind == "channels" and ent.get("https"):
                # a changed webhook is visible as changed, never as its URL
                ent["https"] = [f"{MASK} (#{hashlib.sha256(u.encode()).hexdigest()[:6]})" for u in ent["https"]]
            items[str(name)] = _viewed(ent, roots, mask=kind != "channels")
        views[kind] = items
    views["settings"] = _viewed({k: plain(getattr(env, k)) for k in ("region", "encryption", "protect", "tags",
                                                                          "policies", "owner")}, (), mask=True)
    return views


def entity_changes(before: Environment | None, after: Environment | None,
                   before_root: Path, after_root: Path) -> tuple[list[EntityChange], list[FieldChange]]:
    a = _entity_view(before, before_root) if before else {k: {} for k in _ATTRS} | {"settings": {}}
    b = _entity_view(after, after_root) if after else {k: {} for k in _ATTRS} | {"settings": {}}
    changes = []
    for kind in _ATTRS:
        for name in sorted(set(a[kind]) | set(b[kind])):
            if name not in a[kind]:
                changes.append(EntityChange(kind, name, "added"))
            elif name not in b[kind]:
                changes.append(EntityChange(kind, name, "removed"))
            elif a[kind][name] != b[kind][name]:
                changes.append(EntityChange(kind, name, "changed", tuple(field_changes(a[kind][name], b[kind][name]))))
    settings = field_changes(a["settings"], b["settings"]) if before and after else []
    return changes, settings


def _logical_key_of(urn: str) -> str:
    """The URN with a content hash suffix removed: old and new versions of one resource match."""
    head, _, name = urn.rpartition("::")
    return f"{head}::{_HASH_SUFFIX.sub('', name)}"


def _in_stack(urn: str, env: Environment | None, stacks: Mapping[str, str] | None) -> str:
    if stacks is None or env is None:
        return urn
    return stacked_urn(urn, env.env, stacks.get(urn, env.env))


def stack_of_urn(urn: str) -> str:
    """The stack a URN names (``urn:pulumi:<stack>::...``)."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def _top_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def resource_changes(before: list[Registration], after: list[Registration],
                     before_roots: tuple[str, ...], after_roots: tuple[str, ...],
                     env_after: Environment | None, env_before: Environment | None,
                     stacks_before: Mapping[str, str] | None = None, stacks_after: Mapping[str, str] | None = None,
                     ) -> tuple[list[ResourceChange], dict[str, tuple[Registration | None, Registration | None]]]:
    """Classify every custom resource; returns the changes and the (old, new) pair of each.

    ``stacks_before``/``stacks_after``: URN -> the stack of the resource on each side. A
    resource is keyed by its URN in its stack: one that moves to another stack (an owner
    change) is a delete there and a create here, as the engine sees it.
    """
    old = {_in_stack(r.urn, env_before, stacks_before): r for r in before if r.custom}
    new = {_in_stack(r.urn, env_after, stacks_after): r for r in after if r.custom}
    pairs: dict[str, tuple[Registration | None, Registration | None]] = {}
    for urn in set(old) | set(new):
        pairs[urn] = (old.get(urn), new.get(urn))
    # pair deletes with creates of the same logical resource (content-named SageMaker objects)
    gone = {_logical_key_of(u): u for u in old if u not in new}
    for urn in [u for u in new if u not in old]:
        key = _logical_key_of(urn)
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
            changes.append(ResourceChange(urn, b.type, b.name, "create", entity_of(b, after_map, env_after)))
            continue
        if b is None:
            changes.append(ResourceChange(urn, a.type, a.name, "delete", entity_of(a, before_map, env_before)))
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
                changes.append(ResourceChange(urn, b.type, b.name, "update", entity_of(b, after_map, env_after),
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
            changes.append(ResourceChange(urn, b.type, b.name, "replace", entity_of(b, after_map, env_after),
                                          causes[:8], renamed))
        else:
            changes.append(ResourceChange(urn, b.type, b.name, "update", entity_of(b, after_map, env_after),
                                          tuple(detail[:8])))
    order = {a: i for i, a in enumerate(("delete", "replace", "update", "create"))}
    changes.sort(key=lambda c: (order[c.action], c.entity, c.type, c.name))
    return changes, pairs
