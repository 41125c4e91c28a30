"""How one environment is deployed as several Pulumi stacks of bounded size.

An environment is a **shared stack** (the KMS key(s), the artifact bucket, the Glue
database, the notification topics, the dashboard: what every model uses) and **group
stacks**: one per owner (team), split further into partitions when the team's entities
would exceed the resource budget (:data:`DEFAULT_BUDGET` per stack). Group stacks read the
shared stack's outputs through ``pulumi.StackReference``; under the mock runtime the
reference is answered from the shared stack's render or local state.

Stack names: the shared stack keeps the environment's name (``dev``: an existing
single-stack deployment keeps its key, buckets and topics where they are); a group stack is
``<env>.<group>`` and, for partition ``n`` > 1, ``<env>.<group>.<n>``. Its Pulumi config is
``stacks/Pulumi.<stack>.yaml``, which records the group's partition count.

The partition is stable. A dataset or model goes to partition ``jump(sha256(kind:name), k)``
of its owner's group (Lamping and Veach's jump consistent hash), with ``k`` the group's
partition count: derived once from the group's size and then read from the committed stack
configs, never re-derived. Adding or removing a model moves no other model (its place
depends on its own name, its owner and ``k`` only); raising ``k`` to ``k+1`` moves only the
1/(k+1) of the entities that the new partition takes, the least any split can move. A
monitor goes with what it watches (its alarm reads that endpoint's or bucket's metrics). A
model whose dataset is in another stack reads the bucket by its deterministic name.

Example::

    lay = layout(env)                    # env: resolved
    [s.name for s in lay.stacks]         # ['dev', 'dev.ml-platform']
    lay.stack_of("model", "churn-classifier").name   # 'dev.ml-platform'
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from modelops.components import naming
from modelops.errors import UsageError
from modelops.spec.resolved import Environment

#: resources per stack a group is split to stay under
DEFAULT_BUDGET = 500
#: a group's partitions are derived to fill this share of the budget: room to grow before a split
FILL = 0.6
#: custom resources an entity of each kind makes, about (a derived partition count only:
#: ``modelops stacks`` counts the rendered graph)
WEIGHTS = {"dataset": 9, "model": 11, "monitor": 1, "job": 12}
SHARED_GROUP = "shared"
_SLUG = re.compile(r"[^a-z0-9-]+")
#: the config keys a group stack's Pulumi config carries (``modelops:<key>``)
CONFIG_KEYS = ("environment", "group", "partition", "partitions")

def owner_of(env: Environment, kind: str, name: str) -> str:
    """Who owns an entity: its own ``owner`` (set from its team file), else the project's.

    The one place the stacks read owners from.
    """
    entity = {"dataset": env.datasets, "model": env.models, "monitor": env.monitors}[kind][name]
    return getattr(entity, "owner", None) or env.owner

def group_slug(owner: str) -> str:
    """The stack-name part of an owner: ``ml-platform@example.com`` -> ``ml-platform``,
    ``@acme/fraud-team`` -> ``fraud-team``."""
    text = owner.strip().lower()
    if "@" in text.lstrip("@"):
        text = text.lstrip("@").split("@", 1)[0]
    text = text.lstrip("@").rsplit("/", 1)[-1]
    slug = _SLUG.sub("-", text).strip("-")[:32].strip("-")
    return slug if slug and slug != SHARED_GROUP else f"team-{hashlib.sha256(owner.encode()).hexdigest()[:6]}"

def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: ``key`` -> [0, buckets)."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b

def partition_of(kind: str, name: str, partitions: int) -> int:
    """The partition (0-based) an entity goes to among ``partitions``."""
    key = int.from_bytes(hashlib.sha256(f"{kind}:{name}".encode()).digest()[:8], "big")
    return jump_hash(key, partitions)

@dataclass(frozen=True)
class StackSpec:
    """One stack of a split environment: its name and the entities it builds."""

    name: str
    group: str
    #: 1-based partition of the group (1 for the shared stack)
    partition: int = 1
    partitions: int = 1
    owner: str = ""
    datasets: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    monitors: frozenset[str] = frozenset()
    #: models of this stack with a monitor job
    jobs: int = 0

    @property
    def shared(self) -> bool:
        return self.group == SHARED_GROUP

    def estimate(self) -> int:
        """About how many resources this stack holds (see :data:`WEIGHTS`; ``job``: a model's
        monitor job, its pipeline, schedule, roles and objects)."""
        return (WEIGHTS["dataset"] * len(self.datasets) + WEIGHTS["model"] * len(self.models)
                + WEIGHTS["monitor"] * len(self.monitors) + WEIGHTS["job"] * self.jobs)

    def config(self, env: Environment, spec: str) -> dict[str, Any]:
        """The stack's Pulumi config (``stacks/Pulumi.<name>.yaml``)."""
        values: dict[str, Any] = {"aws:region": env.region, "modelops:spec": spec, "modelops:environment": env.env}
        account = env.account or env.registry_account
        if env.registry_account is not None and account is not None:
            # environments in separate accounts: deployed as the deploy role the registry grants,
            # in the environment's account and no other (docs/registry.md)
            role = naming.role_arn(naming.partition(env.region), account, naming.deploy_role_name(env.project, env.env))
            values.update({"aws:allowedAccountIds": [account],
                           "aws:assumeRoles": [{"roleArn": role, "sessionName": f"modelops-{env.env}"}]})
        if not self.shared:
            values.update({"modelops:group": self.group, "modelops:partition": self.partition,
                           "modelops:partitions": self.partitions})
        return {"config": values}


@dataclass(frozen=True)
class Layout:
    """The stacks of one environment, shared first."""

    env: str
    stacks: tuple[StackSpec, ...]
    #: (kind, entity) -> stack name
    placement: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def shared(self) -> StackSpec:
        return self.stacks[0]

    @property
    def groups(self) -> tuple[StackSpec, ...]:
        return self.stacks[1:]

    def stack(self, name: str) -> StackSpec:
        for spec in self.stacks:
            if spec.name == name:
                return spec
        raise UsageError(f"environment {self.env} has no stack {name}; its stacks: "
                         f"{', '.join(s.name for s in self.stacks)} (see `modelops stacks --env {self.env}`)")

    def stack_of(self, kind: str, name: str) -> StackSpec:
        """The stack an entity is built in (``kind`` ``shared``: the shared stack)."""
        placed = self.placement.get((kind, name))
        return self.stack(placed) if placed is not None else self.shared

def stack_name(env: str, group: str, partition: int = 1) -> str:
    if group == SHARED_GROUP:
        return env
    return f"{env}.{group}" if partition == 1 else f"{env}.{group}.{partition}"

def stacks_dir(env: Environment) -> Path:
    """Where the environment's overlay and stack configs live (``stacks/`` beside the spec)."""
    if env.overlay_file:
        return Path(env.overlay_file).parent
    return Path(env.spec_file).resolve().parent / "stacks"

def recorded_partitions(directory: Path, env_name: str) -> dict[str, int]:
    """Group -> partition count, as recorded in the committed ``Pulumi.<env>.<group>.yaml`` files."""
    out: dict[str, int] = {}
    for path in sorted(directory.glob(f"Pulumi.{env_name}.*.yaml")):
        try:
            config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        group, count = config.get("modelops:group"), config.get("modelops:partitions")
        if isinstance(group, str) and isinstance(count, int) and count >= 1:
            out[group] = max(out.get(group, 1), count)
    return out

def layout(env: Environment, *, budget: int = DEFAULT_BUDGET, partitions: Mapping[str, int] | None = None) -> Layout:
    """The stacks ``env`` deploys as. ``partitions``: group -> count (default: the recorded
    ones, see :func:`recorded_partitions`; a group without a record gets a derived count).

    Example::

        layout(env).stack_of("model", "churn-classifier").name    # 'dev.ml-platform'
    """
    if partitions is None:
        partitions = recorded_partitions(stacks_dir(env), env.env)
    owners: dict[str, str] = {}
    members: dict[str, list[tuple[str, str]]] = {}
    for kind, entities in (("dataset", env.datasets), ("model", env.models)):
        for name in sorted(entities):
            owner = owner_of(env, kind, name)
            slug = group_slug(owner)
            if owners.setdefault(slug, owner) != owner:
                raise UsageError(f"owners {owners[slug]!r} and {owner!r} give the same stack name {slug!r}; "
                                 "spell one of them differently")
            members.setdefault(slug, []).append((kind, name))
    monitors_of: dict[tuple[str, str], list[str]] = {}
    for name in sorted(env.monitors):
        mon = env.monitors[name]
        target = ("dataset", mon.dataset) if mon.dataset is not None else ("model", mon.model)
        monitors_of.setdefault(target, []).append(name)
    # models with a monitor job (their job's resources are in the model's stack)
    jobs = frozenset(("model", m.model) for m in env.monitors.values() if m.model is not None and m.is_job)

    placement: dict[tuple[str, str], str] = {}
    stacks = [StackSpec(name=stack_name(env.env, SHARED_GROUP), group=SHARED_GROUP, owner=env.owner)]
    for slug in sorted(members):
        count = partitions.get(slug) or derived_partitions(members[slug], monitors_of, budget, jobs)
        parts: list[dict[str, set[str]]] = [{"dataset": set(), "model": set(), "monitor": set()} for _ in range(count)]
        for kind, name in members[slug]:
            index = partition_of(kind, name, count)
            parts[index][kind].add(name)
            parts[index]["monitor"].update(monitors_of.get((kind, name), ()))
        for index, part in enumerate(parts, start=1):
            spec = StackSpec(name=stack_name(env.env, slug, index), group=slug, partition=index, partitions=count,
                             owner=owners[slug], datasets=frozenset(part["dataset"]), models=frozenset(part["model"]),
                             monitors=frozenset(part["monitor"]),
                             jobs=sum(1 for m in part["model"] if ("model", m) in jobs))
            stacks.append(spec)
            for kind in ("dataset", "model", "monitor"):
                for name in part[kind]:
                    placement[(kind, name)] = spec.name
    return Layout(env=env.env, stacks=tuple(stacks), placement=placement)

def derived_partitions(members: list[tuple[str, str]], monitors_of: Mapping[tuple[str, str], list[str]],
                       budget: int, jobs: frozenset[tuple[str, str]] = frozenset()) -> int:
    """How many partitions a group without a recorded count gets: its estimated resources over
    :data:`FILL` of the budget (``jobs``: the models with a monitor job)."""
    weight = sum(WEIGHTS[kind] + WEIGHTS["monitor"] * len(monitors_of.get((kind, name), ()))
                 + (WEIGHTS["job"] if (kind, name) in jobs else 0) for kind, name in members)
    return max(1, math.ceil(weight / (budget * FILL)))

def split_by_stack(entities: Mapping[tuple[str, str], Any], lay: Layout) -> dict[str, dict[tuple[str, str], Any]]:
    """(kind, entity) -> value, grouped by the stack each entity is in; ``shared`` kinds to the shared stack."""
    out: dict[str, dict[tuple[str, str], Any]] = {s.name: {} for s in lay.stacks}
    for key, value in entities.items():
        out[lay.stack_of(*key).name][key] = value
    return out

def config_files(env: Environment, lay: Layout, spec: str = "modelops.yaml") -> dict[str, dict[str, Any]]:
    """File name (in ``stacks/``) -> content of every stack config of the environment."""
    return {f"Pulumi.{s.name}.yaml": s.config(env, spec) for s in lay.stacks}
