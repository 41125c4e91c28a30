"""The render cache: rendered graphs kept by content, per spec entity, so that a one-model
change re-renders one model (in this process, and on disk under ``.modelops/cache``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import itertools
import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pulumi

from modelops.components.environment import component_entities
from modelops.components.naming import prefix
from modelops.graph.forked import jobs_setting
from modelops.graph.keys import (
    _ROOT_TEXT, RENDER_CACHE_ENV, _relocate, code_fingerprint, group_keys, relocate_to, relocations, settings_of,
)
from modelops.graph.render import Graph, render
from modelops.graph.runtime import Registration
from modelops.perf import no_gc
from modelops.secrets import secret_urls
from modelops.spec.resolved import Environment


def render_graph(env: Environment, cache_dir: Path | None = None, *, jobs: int | None = None,
                 held: dict[str, list[Registration]] | None = None) -> list[Registration]:
    """The rendered graph of a resolved environment, through the render cache; a render
    uses up to ``jobs`` processes (default :func:`modelops.graph.render.render_jobs`);
    ``held`` as in :meth:`RenderCache.render`."""
    return cached_render(env, cache_dir, jobs=jobs, held=held).registrations


def cached_render(env: Environment, cache_dir: Path | None = None, *, jobs: int | None = None,
                  collect: bool = True, held: dict[str, list[Registration]] | None = None) -> Any:
    """The :class:`~modelops.graph.render.Graph` of ``env`` through the render cache (in this
    process and under ``cache_dir``), unless :data:`RENDER_CACHE_ENV` is ``off``.
    ``collect=False``: see :func:`modelops.graph.render.render`; ``held``: see
    :meth:`RenderCache.render` (unused with the cache off).

    Example::

        graph = cached_render(env, Path(".modelops/cache"))   # a second call: no render
    """
    jobs_setting()  # a bad MODELOPS_RENDER_JOBS is an error whether or not a render is needed
    if os.environ.get(RENDER_CACHE_ENV) == "off":
        return render(env, jobs=jobs, collect=collect)
    return RENDER_CACHE.render(env, cache_dir, jobs=jobs, collect=collect, held=held)


_PLACEHOLDER = "modelops-cached-secret:"


def _secrets_of(env: Environment) -> tuple[str, ...]:
    """Every URL in the environment's settings that may carry a credential (webhook endpoints)."""
    return tuple(sorted(set(secret_urls(settings_of(env))), key=len, reverse=True))


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


#: an entry larger than this is not read (a 1,000-model environment's largest is ~0.2 MB)
MAX_ENTRY_BYTES = 64 * 1024 * 1024
#: the marker of a value JSON has no form for (a Pulumi asset), and the asset kinds read back
_ASSET = "\u0000modelops-asset"
_ASSETS = {"FileAsset": ("path", pulumi.FileAsset), "StringAsset": ("text", pulumi.StringAsset),
           "FileArchive": ("path", pulumi.FileArchive), "RemoteAsset": ("uri", pulumi.RemoteAsset)}


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        if any(type(k) is not str for k in value):
            raise TypeError("a mapping with keys that are not strings")
        return {k: _encode(v) for k, v in value.items()}
    if kind is list:
        return [_encode(v) for v in value]
    entry = _ASSETS.get(kind.__name__)
    if entry is not None and isinstance(value, entry[1]):
        return {_ASSET: kind.__name__, "value": str(getattr(value, entry[0]))}
    # anything else (a tuple, an unknown object) would not read back as it was: not cached
    raise TypeError(f"{kind.__name__} has no data form in the render cache")


def _decode(value: Any) -> Any:
    if type(value) is dict:
        if _ASSET in value:
            _, cls = _ASSETS[value[_ASSET]]
            return cls(value["value"])
        return {k: _decode(v) for k, v in value.items()}
    if type(value) is list:
        return [_decode(v) for v in value]
    return value


def _seal(key: str, payload: bytes) -> str:
    """The integrity digest of an entry: its payload, its key and the rendering code."""
    return hashlib.sha256(code_fingerprint().encode() + b"\x1f" + key.encode() + b"\x1f" + payload).hexdigest()


def _held(key: str, roots: tuple[tuple[str, str], ...]) -> str:
    """The in-process name of entry ``key`` rendered in the checkout of ``roots``."""
    return key if not roots else key + "\x1f" + "\x1f".join(old for old, _ in roots)


def encode_entry(regs: list[Registration], key: str, relocate: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A cache entry as data only: one line with its integrity digest, then JSON rows of
    the registrations' fields, paths under the ``relocate`` directories kept relative.
    Raises TypeError for a value with no data form."""
    text = json.dumps([[_encode(v) for v in r.row()] for r in regs], separators=(",", ":"),
                      ensure_ascii=False, allow_nan=True)
    payload = _relocate(text, relocate).encode("utf-8")
    return _seal(key, payload).encode() + b"\n" + payload


def decode_entry(raw: bytes, key: str, relocate: tuple[tuple[str, str], ...] = ()) -> list[Registration] | None:
    """The registrations of an entry, or None when it is damaged, was made for another key
    or by other code, or is too large; relative paths are placed under this checkout's
    ``relocate`` directories. Reading it never runs code: JSON, then plain values and the
    Pulumi asset kinds above."""
    if len(raw) > MAX_ENTRY_BYTES:
        return None
    seal, _, payload = raw.partition(b"\n")
    if not hmac.compare_digest(seal, _seal(key, payload).encode()):
        return None
    if relocate and _ROOT_TEXT in payload:
        # back under this checkout: the first directory named (where its packages are)
        payload = payload.replace(_ROOT_TEXT, relocate_to(relocate).encode("utf-8"))
    try:
        rows = json.loads(payload)
        if b"modelops-asset" in payload:
            rows = _decode(rows)
        return [Registration(*row) for row in rows]
    except (ValueError, TypeError, KeyError):
        return None


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
    def keys(env: Environment, cache_dir: Path | str | None = None) -> dict[tuple[str, str], str]:
        """(kind, entity) → content key of its group: :func:`modelops.graph.keys.group_keys`."""
        return group_keys(env, cache_dir)

    # -- storage ---------------------------------------------------------------------------

    @staticmethod
    def entry_path(cache_dir: Path | str, key: str) -> str:
        """Where the entry ``key`` lives: under the fingerprint of the code that renders
        (:func:`code_fingerprint`), so entries of other code versions can be removed whole."""
        return os.path.join(cache_dir, "render", code_fingerprint()[:16], key[:2], key + ".json")

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

    def _get(self, key: str, cache_dir: Path | None, secrets: tuple[str, ...] = (),
             roots: tuple[tuple[str, str], ...] = ()) -> list[Registration] | None:
        # in this process an entry holds the paths of the checkout that rendered it: one per checkout
        held = _held(key, roots)
        with self._lock:
            if held in self._lru:
                self._lru.move_to_end(held)
                return self._lru[held]
        if cache_dir is not None:
            try:
                with open(self.entry_path(cache_dir, key), "rb") as handle:
                    raw = handle.read(MAX_ENTRY_BYTES + 1)
            except OSError:  # not cached (or unreadable): a miss
                return None
            regs = decode_entry(raw, key, roots)
            if regs is None:
                return None  # damaged, foreign or too large: a miss, never code
            if _PLACEHOLDER.encode() in raw:
                try:
                    # the key covers the settings, secrets included: the spec holds each one
                    regs = _unmask_secrets(regs, {_placeholder(v): v for v in secrets})
                except Exception:  # noqa: BLE001 - an unknown secret is a miss
                    return None
            self._put_many([(key, regs)], None, roots=roots)
            return regs
        return None

    def _put_many(self, entries: list[tuple[str, list[Registration]]], cache_dir: Path | None,
                  secrets: tuple[str, ...] = (), roots: tuple[tuple[str, str], ...] = ()) -> None:
        """Keep ``entries`` (key, group) in the LRU and, with a ``cache_dir``, on disk: each
        written whole under a name of its own, then renamed into place (a reader never sees
        half an entry). Plain string paths and one directory check per directory: a
        1,000-model render writes some 5,000 entries."""
        with self._lock:
            for key, regs in entries:
                held = _held(key, roots)
                self._lru[held] = regs
                self._lru.move_to_end(held)
            while len(self._lru) > self._max:
                self._lru.popitem(last=False)
        if cache_dir is None:
            return
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
                # the spec being rendered supplies the value when the entry is read back
                data = encode_entry(_mask_secrets(regs, secrets), key, roots)
                with open(tmp, "xb") as handle:
                    handle.write(data)
                os.replace(tmp, final)
            except (OSError, TypeError, ValueError):
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
               collect: bool = True, held: dict[str, list[Registration]] | None = None) -> Any:
        """The :class:`~modelops.graph.render.Graph` of ``env``, re-rendering only groups not cached
        (in up to ``jobs`` processes; ``collect`` as in :func:`modelops.graph.render.render`).

        ``held`` (key → group), when given, is where groups are taken from first, as they
        are (neither read nor rendered), and it is given this render's groups. The two sides
        of a diff share one: the base's unchanged groups are the very registrations of the
        working tree's, which the comparison then skips (the same key is the same content;
        paths in them are the working tree's)."""
        with no_gc():  # thousands of acyclic lists and dicts: collections would only rescan them
            keys = self.keys(env, cache_dir)
            secrets = _secrets_of(env)
            roots = relocations(env, cache_dir)

            def get(key: str) -> list[Registration] | None:
                found = held.get(key) if held is not None else None
                return found if found is not None else self._get(key, cache_dir, secrets, roots)

            # without the shared group the render is a full one: the entities' entries are not read
            shared = get(keys[("shared", "")])
            found = {group: get(key) for group, key in keys.items()} if shared is not None else dict.fromkeys(keys)
        missing = {g for g, regs in found.items() if regs is None}
        if shared is None:
            graph = render(env, jobs=jobs, collect=collect)
            self.stats["full"] += 1
            entries = [(keys[group], regs) for group, regs in self._groups(graph).items() if group in keys]
            self._put_many(entries, cache_dir, secrets, roots)
            if held is not None:
                held.update(entries)
            return graph
        if missing:
            sub, complete = self._closure(env, missing)
            self.stats["partial"] += 1
            rendered = [(group, regs) for group, regs in self._groups(render(sub, jobs=jobs, collect=collect)).items()
                        if group in complete and group in keys]
            self._put_many([(keys[group], regs) for group, regs in rendered], cache_dir, secrets, roots)
            for group, regs in rendered:
                if group in missing:
                    found[group] = regs
        else:
            self.stats["hit"] += 1
        if held is not None:
            held.update((keys[group], regs) for group, regs in found.items() if regs is not None)
        with no_gc():
            registrations = sorted((r for regs in found.values() for r in regs or []), key=lambda r: r.urn)
        return Graph(project=env.project, stack=env.env, registrations=registrations,
                     entities=component_entities(prefix(env.project, env.env), env))


RENDER_CACHE = RenderCache()
