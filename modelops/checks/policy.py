"""Built-in policies over the rendered resource graph of one environment.

Each rule id is a key of the spec's ``policies`` map. Resource rules are pure functions of
a resource's type and input properties (what we would send to AWS); the few rules that are
about the environment as a whole (production capacity and monitoring) read the resolved
:class:`~modelops.spec.resolved.Environment`.

========================  ==========  ===============================================================
id                        default     holds when
========================  ==========  ===============================================================
storage-encrypted         mandatory   every bucket has a server-side encryption rule (SSE-KMS or SSE-S3)
storage-private           mandatory   every bucket blocks public access (all four settings) and has a
                                      policy that denies requests without TLS (``aws:SecureTransport``)
                                      and allows no one to everyone unless a condition names the
                                      callers (:data:`RESTRICTING_KEYS`, e.g. ``aws:PrincipalAccount``)
no-wildcard-iam           mandatory   no Allow grants ``*`` or ``service:*`` actions, and no Allow uses
                                      Resource ``*`` except for actions that only accept ``*``
                                      (:data:`STAR_RESOURCE_ACTIONS`, e.g. ``ecr:GetAuthorizationToken``)
endpoint-encrypted        mandatory   every endpoint configuration sets a KMS key for its volumes
                                      (``kmsKeyArn``), unless none of its variants has a volume to encrypt
                                      (serverless, or instance types with only NVMe instance storage);
                                      data capture, when on, is KMS-encrypted
prod-min-instances        advisory    in a production environment (named ``prod``/``production`` or
                                      ``protect: true``) every instance-backed model runs at least 2
                                      instances (``instance_count``, or ``autoscaling.min`` when set) so
                                      one instance can fail; serverless models pass (AWS spreads them
                                      over availability zones)
prod-monitors             advisory    in a production environment every model has a latency monitor and
                                      an error-rate monitor, each notifying at least one channel
========================  ==========  ===============================================================

The spec's ``policies`` map sets a level per rule: ``mandatory`` (``validate`` fails, exit 2;
``diff --fail-on policy`` fails), ``advisory`` (reported) or ``off``. ``validate``, ``up`` and
``diff`` also gate on the security controls :mod:`modelops.checks.security` checks itself (SNS.1,
KMS.4, SageMaker.4 …), on the same rendered graph (:func:`modelops.checks.security.findings`).
Every fix hint names a spec setting in backticks by its full path (a test resolves each in
the schema).

Example::

    for finding in evaluate(env, render(env)):
        print(finding.level, finding.policy, finding.entity, finding.message)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from modelops.graph.resource_types import (
    BUCKET, BUCKET_PAB, BUCKET_POLICY, BUCKET_SSE, ENDPOINT_CONFIG, ROLE_POLICY,
)
from modelops.spec.resolved import Environment
from modelops.graph.registration import Registration

POLICY_IDS = (
    "storage-encrypted",
    "storage-private",
    "prod-min-instances",
    "prod-monitors",
    "no-wildcard-iam",
    "endpoint-encrypted",
)
DEFAULT_LEVELS: dict[str, str] = {
    "storage-encrypted": "mandatory",
    "storage-private": "mandatory",
    "no-wildcard-iam": "mandatory",
    "endpoint-encrypted": "mandatory",
    "prod-min-instances": "advisory",
    "prod-monitors": "advisory",
}
PROD_NAMES = frozenset({"prod", "production", "prd"})
#: IAM actions that do not support resource-level permissions: Resource "*" is the only option
STAR_RESOURCE_ACTIONS = frozenset(
    {
        "ecr:getauthorizationtoken",
        "cloudwatch:putmetricdata",
        "sts:getcalleridentity",
        "logs:describeloggroups",
        "sagemaker:listendpoints",
    }
)
PUBLIC_ACCESS_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
#: SageMaker instance families whose only storage is NVMe instance store: a volume KMS key is refused
INSTANCE_STORE_FAMILIES = ("ml.g4dn.", "ml.g5.", "ml.p4d.", "ml.m5d.", "ml.c5d.", "ml.r5d.", "ml.inf2.")
COMPONENT_KINDS = {
    "modelops:index:Dataset": "datasets",
    "modelops:index:ModelEndpoint": "models",
    "modelops:index:Monitor": "monitors",
    "modelops:index:Notifications": "notifications",
}


@dataclass(frozen=True, order=True)
class Finding:
    """One policy violation: which rule, how serious, where, and how to fix it."""

    policy: str
    level: str
    #: the resource's URN, or ``env:<env>`` for environment-level rules
    resource: str
    #: the spec entity it comes from, e.g. ``models.churn-classifier`` ("" when none)
    entity: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "level": self.level,
            "resource": self.resource,
            "entity": self.entity,
            "message": self.message,
            "fix": self.fix,
        }

    def line(self, spec_file: str = "") -> str:
        """``FILE: entity: [policy] message; fix`` — the one line ``validate`` prints."""
        where = f"{spec_file}: " if spec_file else ""
        entity = f"{self.entity}: " if self.entity else ""
        return f"{where}{entity}[{self.policy}] {self.message}; {self.fix}"


# ---------------------------------------------------------------- resource rules (pure)


def _as_document(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            doc = json.loads(value)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}
    return {}


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM policy document (a JSON string or a dict)."""
    return [s for s in _listify(_as_document(document).get("Statement")) if isinstance(s, dict)]


def sse_problems(props: dict[str, Any]) -> list[str]:
    """storage-encrypted, on a bucket's server-side encryption configuration."""
    rules = _listify(props.get("rules"))
    algorithms = [
        ((r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") or "")
        for r in rules
        if isinstance(r, dict)
    ]
    if not any(a in ("aws:kms", "aws:kms:dsse", "AES256") for a in algorithms):
        return ["the bucket has no default server-side encryption rule"]
    return []


def public_access_problems(props: dict[str, Any]) -> list[str]:
    """storage-private, on a public access block: all four settings must be true."""
    off = [s for s in PUBLIC_ACCESS_SETTINGS if props.get(s) is not True]
    return [f"public access block leaves {', '.join(off)} off"] if off else []


def is_tls_only(document: Any) -> bool:
    """True when the policy denies every request made without TLS."""
    for st in statements(document):
        if st.get("Effect") != "Deny":
            continue
        cond = st.get("Condition") or {}
        for op in ("Bool", "BoolIfExists"):
            value = (cond.get(op) or {}).get("aws:SecureTransport")
            if str(value).lower() == "false" and (st.get("Principal") in ("*", {"AWS": "*"})):
                return True
    return False


#: condition keys that narrow "everyone" to known callers (an account, an organisation, a
#: principal, a source resource or network path)
RESTRICTING_KEYS = frozenset(k.lower() for k in (
    "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths",
    "aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID", "aws:SourceOrgPaths",
    "aws:SourceVpc", "aws:SourceVpce", "aws:userid",
))
#: operators that require the key to be present and to match (no ``Not...``, no ``...IfExists``)
MATCHING_OPERATORS = frozenset(("stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"))


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def _restricts_callers(condition: Any) -> bool:
    """True when ``condition`` limits who may call: a matching operator on a restricting key
    with no wildcard value. ``{"Bool": {"aws:SecureTransport": "true"}}`` does not."""
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if str(operator).lower() not in MATCHING_OPERATORS or not isinstance(tests, dict):
            continue
        for key, values in tests.items():
            values = values if isinstance(values, list) else [values]
            if str(key).lower() in RESTRICTING_KEYS and values and all(
                    isinstance(v, str) and v and "*" not in v and "?" not in v for v in values):
                return True
    return False


def public_grant_problems(document: Any) -> list[str]:
    """storage-private, on a bucket policy: no Allow to everyone, unless a condition limits
    the callers to known accounts, principals or sources."""
    found = []
    for st in statements(document):
        if st.get("Effect") == "Allow" and _is_everyone(st.get("Principal")) \
                and not _restricts_callers(st.get("Condition")):
            found.append(f"statement {st.get('Sid') or '(no Sid)'} allows everyone")
    return found


def wildcard_problems(document: Any) -> list[str]:
    """no-wildcard-iam, on an identity policy document."""
    found = []
    for st in statements(document):
        if st.get("Effect") != "Allow":
            continue
        sid = st.get("Sid") or "(no Sid)"
        if "NotAction" in st or "NotResource" in st:
            found.append(f"statement {sid} uses NotAction/NotResource, which grants everything else")
        actions = [str(a) for a in _listify(st.get("Action"))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                found.append(f"statement {sid} allows action {action}")
        if "*" in [str(r) for r in _listify(st.get("Resource"))]:
            narrowable = [a for a in actions if a.lower() not in STAR_RESOURCE_ACTIONS]
            if narrowable:
                found.append(f"statement {sid} allows {', '.join(sorted(narrowable))} on Resource *")
    return found


def endpoint_encryption_problems(props: dict[str, Any]) -> list[str]:
    """endpoint-encrypted, on an endpoint configuration."""
    found = []
    variants = _listify(props.get("productionVariants")) + _listify(props.get("shadowProductionVariants"))
    needs_volume_key = any(
        isinstance(v, dict)
        and not v.get("serverlessConfig")
        and not str(v.get("instanceType") or "").startswith(INSTANCE_STORE_FAMILIES)
        for v in variants
    )
    if needs_volume_key and not props.get("kmsKeyArn"):
        found.append("the endpoint configuration sets no KMS key for its instance volumes (kmsKeyArn)")
    capture = props.get("dataCaptureConfig") or {}
    if capture and capture.get("enableCapture", True) and not capture.get("kmsKeyId"):
        found.append("data capture is on but not KMS-encrypted (dataCaptureConfig.kmsKeyId)")
    return found


#: (policy id, resource type) → pure rule returning problem messages, with the fix
RESOURCE_RULES: dict[tuple[str, str], tuple[Callable[[dict[str, Any]], list[str]], str]] = {
    ("storage-encrypted", BUCKET_SSE): (sse_problems, "keep `encryption: kms` (or sse-s3) in the spec; do not remove the bucket's encryption rule"),
    ("storage-private", BUCKET_PAB): (public_access_problems, "set all four public access block settings to true"),
    ("storage-private", BUCKET_POLICY): (lambda p: public_grant_problems(p.get("policy")), "remove the statement that allows Principal *, or limit it with a condition on aws:PrincipalAccount or aws:PrincipalOrgID"),
    ("no-wildcard-iam", ROLE_POLICY): (lambda p: wildcard_problems(p.get("policy")), "name the actions and resource ARNs the role needs"),
    ("endpoint-encrypted", ENDPOINT_CONFIG): (endpoint_encryption_problems, "keep `encryption: kms` so endpoints use the environment's key (or set `policies: {endpoint-encrypted: advisory}` to accept AWS-managed volume keys)"),
}


# ---------------------------------------------------------------- graph and environment rules


class _Companions:
    """Resources by the bucket they attach to (they depend on it, or name it), indexed once
    per graph: a lookup per bucket, not a scan of the whole graph per bucket."""

    def __init__(self, graph: list[Registration]) -> None:
        self._by_dependency: dict[tuple[str, str], list[Registration]] = {}
        self._by_name: dict[tuple[str, str], list[Registration]] = {}
        for r in graph:
            if r.custom and r.type != BUCKET:
                for urn in set(r.dependencies):
                    self._by_dependency.setdefault((r.type, urn), []).append(r)
                name = r.inputs.get("bucket")
                if isinstance(name, str):
                    self._by_name.setdefault((r.type, name), []).append(r)

    def of(self, bucket: Registration, type_: str) -> list[Registration]:
        """Resources of ``type_`` attached to ``bucket`` (they depend on it, or name it)."""
        bucket_ids = {bucket.id, bucket.inputs.get("bucket"), (bucket.outputs or {}).get("bucket")} - {None, ""}
        found = {id(r): r for r in self._by_dependency.get((type_, bucket.urn), ())}
        for name in bucket_ids:
            if isinstance(name, str):
                found.update((id(r), r) for r in self._by_name.get((type_, name), ()))
        return list(found.values())


#: the index of the graph checked last, with its length (held, so that its id cannot be reused)
_INDEXED: tuple[list[Registration], int, _Companions] | None = None
_INDEX_LOCK = threading.Lock()


def _companions(graph: list[Registration], bucket: Registration, type_: str) -> list[Registration]:
    """Resources of ``type_`` attached to ``bucket`` (they depend on it, or name it)."""
    global _INDEXED
    with _INDEX_LOCK:
        if _INDEXED is None or _INDEXED[0] is not graph or _INDEXED[1] != len(graph):
            _INDEXED = (graph, len(graph), _Companions(graph))
        index = _INDEXED[2]
    return index.of(bucket, type_)


def _bucket_rules(graph: list[Registration]) -> list[tuple[str, Registration, str, str]]:
    found = []
    companions = _Companions(graph)
    for bucket in (r for r in graph if r.type == BUCKET):
        if not companions.of(bucket, BUCKET_SSE):
            found.append(("storage-encrypted", bucket, "the bucket has no server-side encryption configuration",
                          "keep `encryption: kms` (or sse-s3) in the spec"))
        if not companions.of(bucket, BUCKET_PAB):
            found.append(("storage-private", bucket, "the bucket has no public access block",
                          "block all public access on the bucket"))
        policies = companions.of(bucket, BUCKET_POLICY)
        if not any(is_tls_only(p.inputs.get("policy")) for p in policies):
            found.append(("storage-private", bucket, "the bucket policy does not deny requests without TLS",
                          "add a Deny statement with Condition Bool aws:SecureTransport false"))
    return found


def is_production(env: Environment) -> bool:
    """Production: an environment named prod/production, or one that protects its resources."""
    return env.env in PROD_NAMES or env.protect


def _env_rules(env: Environment) -> list[tuple[str, str, str, str]]:
    """(policy, entity, message, fix) for the environment-level rules."""
    if not is_production(env):
        return []
    found = []
    by_model: dict[str, list[Any]] = {}  # one pass over the monitors, not one per model
    for mon in env.monitors.values():
        if mon.model is not None:
            by_model.setdefault(mon.model, []).append(mon)
    for name, model in sorted(env.models.items()):
        serving = model.serving
        if serving.serverless is None:
            floor = serving.autoscaling.min if serving.autoscaling else serving.instance_count
            if floor < 2:
                what = "autoscaling.min" if serving.autoscaling else "instance_count"
                found.append(("prod-min-instances", f"models.{name}",
                              f"production model runs {floor} instance ({what}); one failure takes it down",
                              f"set `models.{name}.serving.{what}: 2` in the {env.env} overlay"))
        monitors = by_model.get(name, [])
        for label, test in (("latency", lambda m: m.metric.startswith("latency_")),
                            ("error", lambda m: m.metric == "error_rate")):
            watching = [m for m in monitors if test(m)]
            if not watching:
                found.append(("prod-monitors", f"models.{name}", f"production model has no {label} monitor",
                              f"add a {label} monitor for {name} (or keep `models.{name}.default_monitors: true`)"))
            elif not any(m.notify for m in watching):
                found.append(("prod-monitors", f"models.{name}",
                              f"the {label} monitor of the production model notifies nobody",
                              "declare a channel under `notifications` and list it in `monitors.<name>.notify` "
                              f"of the {label} monitor"))
    return found


def levels(env: Environment) -> dict[str, str]:
    """Effective level of each policy: the defaults, then the spec's ``policies``."""
    return {**DEFAULT_LEVELS, **{k: v for k, v in (env.policies or {}).items() if k in DEFAULT_LEVELS}}


def entity_of(reg: Registration, graph: Iterable[Registration] | dict[str, Registration],
              env: Environment | None = None) -> str:
    """The spec entity (``datasets.customers``) a resource belongs to, from its component parents."""
    # callers classifying many resources pass a prepared {urn: registration} map
    by_urn = graph if isinstance(graph, dict) else {r.urn: r for r in graph}
    current = by_urn.get(reg.urn, reg)
    seen = 0
    while current is not None and seen < 50:
        kind = COMPONENT_KINDS.get(current.type)
        if kind:
            return f"{kind}.{_entity_name(kind, current.name, env)}"
        current = by_urn.get(current.parent)
        seen += 1
    return ""


def _entity_name(kind: str, component_name: str, env: Environment | None) -> str:
    if env is None:
        return component_name
    names = {
        "datasets": env.datasets, "models": env.models, "monitors": env.monitors, "notifications": env.channels,
    }[kind]
    if component_name in names:
        return component_name
    # components may be named with a prefix (``churn-dev-customers``): the longest suffix match wins
    matches = [n for n in names if component_name.endswith(f"-{n}") or component_name.endswith(f"/{n}")]
    return max(matches, key=len) if matches else component_name


def evaluate(env: Environment, registrations: Iterable[Registration]) -> list[Finding]:
    """Every finding of the built-in policies on one environment's rendered graph.

    Policies set to ``off`` are skipped. Findings are sorted: mandatory first.

    Example::

        mandatory = [f for f in evaluate(env, graph) if f.level == "mandatory"]
    """
    graph = list(registrations)
    level = levels(env)
    found: set[Finding] = set()

    def add(policy: str, resource: str, entity: str, message: str, fix: str) -> None:
        if level.get(policy, "off") != "off":
            found.add(Finding(policy, level[policy], resource, entity, message, fix))

    for reg in graph:
        if not reg.custom:
            continue
        for (policy, type_), (rule, fix) in RESOURCE_RULES.items():
            if reg.type == type_:
                for message in rule(reg.inputs):
                    add(policy, reg.urn, entity_of(reg, graph, env), message, fix)
    for policy, reg, message, fix in _bucket_rules(graph):
        add(policy, reg.urn, entity_of(reg, graph, env), message, fix)
    for policy, entity, message, fix in _env_rules(env):
        add(policy, f"env:{env.env}", entity, message, fix)
    return sorted(found, key=lambda f: (f.level != "mandatory", f.policy, f.entity, f.resource, f.message))
