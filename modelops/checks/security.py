"""Security controls over the rendered resource graph, mapped to AWS Foundational Security
Best Practices (FSBP) where a control applies to what ModelOps emits.

Controls reuse the rules of :mod:`modelops.checks.policy` where that module already checks the
same thing (public access, TLS-only, encryption, wildcard IAM, endpoint KMS, production
capacity); the checks it does not have (versioning, lifecycle, KMS buckets, SNS
encryption, key rotation, network isolation) live here. A control is evaluated per
resource of its type: the report says how many resources it applied to and which failed.

=================  ============  ===========================================================
control            default       holds when
=================  ============  ===========================================================
S3.8               mandatory     each bucket blocks public access (all four settings) and
                                 its policy grants nothing to everyone  (policy: storage-private)
S3.5               mandatory     each bucket policy denies requests without TLS (storage-private)
s3-encryption      mandatory     each bucket has default server-side encryption (storage-encrypted)
S3.17              advisory      each bucket's default encryption uses a KMS key (``encryption: kms``)
S3.14              mandatory     each bucket has versioning enabled
S3.13              mandatory     each bucket has an enabled lifecycle rule
endpoint-kms       mandatory     each endpoint configuration encrypts its volumes and data
                                 capture with KMS (policy: endpoint-encrypted)
SageMaker.4        mandatory     in production, each instance-backed production variant (primary and
                                 canary) starts 2+ instances; other environments: not applicable
SageMaker.5        mandatory     each SageMaker model has network isolation enabled
SNS.1              mandatory     each SNS topic is encrypted at rest with a customer-managed KMS key
                                 (``alias/aws/sns`` cannot be used by CloudWatch alarms)
KMS.4              mandatory     each KMS key has automatic rotation enabled
iam-no-wildcard    mandatory     no role policy allows ``*`` actions or Resource ``*`` where a
                                 narrower resource exists (policy: no-wildcard-iam)
iam-trust          mandatory     each role is assumable only by a service principal, never ``*``
=================  ============  ===========================================================

Controls mapped to a policy rule follow that rule's level in the spec's ``policies`` map:
a rule a team set to ``advisory`` (a reviewed exception) makes its control advisory; the
failures are still reported. SageMaker.4 follows ``prod-min-instances`` that way.

``validate``, ``up`` and ``diff --fail-on policy`` evaluate the controls checked here on the
graph they render for the policies (:func:`findings`); the controls mapped to a policy rule
are that rule's findings already. A hint names a spec setting in backticks by its path
from the top of the spec (``models.<name>.serving.instance_count: 2``): a test resolves
every hint's settings in the schema.

Example::

    report = security_report(load_environment("modelops.yaml", "prod"))  # modelops.checks.pipeline
    report.failed_mandatory()   # [] when every mandatory control passes
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from modelops.checks import policy
from modelops.graph.resource_types import (
    BUCKET, BUCKET_LIFECYCLE, BUCKET_SSE, BUCKET_VERSIONING, ENDPOINT_CONFIG, KMS_KEY, ROLE,
    ROLE_POLICY, SAGEMAKER_MODEL, TOPIC,
)
from modelops.spec.resolved import Environment
from modelops.graph.registration import Registration

__all__ = ["CONTROLS", "Control", "ControlResult", "EnvironmentReport", "control_findings", "evaluate_graph", "findings"]


@dataclass(frozen=True)
class Control:
    """One security control: what it checks, on which resource type, and how."""

    id: str
    #: True when ``id`` is an AWS FSBP control ID (otherwise a descriptive ModelOps id)
    fsbp: bool
    title: str
    resource_type: str
    level: str
    #: the modelops.checks.policy rule this control reuses ("" when the check lives here)
    policy: str = ""
    #: for controls checked here: (resource, graph) -> problem messages
    check: Callable[[Registration, list[Registration]], list[str]] | None = None
    #: why a control does not apply to an environment (None: it applies)
    applies: Callable[[Environment], str | None] = lambda env: None
    #: how to fix a failure (controls checked here); ``<name>`` is the failing spec entity's name
    fix: str = ""


@dataclass
class ControlResult:
    control: Control
    level: str
    #: resources of the control's type the control was evaluated on
    resources: int
    #: (resource name, message) of each failure
    failures: list[tuple[str, str]] = field(default_factory=list)
    not_applicable: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control.id,
            "fsbp": self.control.fsbp,
            "title": self.control.title,
            "level": self.level,
            "policy": self.control.policy,
            "resource_type": self.control.resource_type,
            "resources": self.resources,
            "passed": self.resources - len({name for name, _ in self.failures}) if not self.not_applicable else 0,
            "failed": len({name for name, _ in self.failures}),
            "status": "n/a" if self.not_applicable else ("pass" if self.passed else "fail"),
            "not_applicable": self.not_applicable,
            "failures": [{"resource": name, "message": message} for name, message in self.failures],
        }


@dataclass
class EnvironmentReport:
    project: str
    env: str
    results: list[ControlResult]

    def failed_mandatory(self) -> list[ControlResult]:
        return [r for r in self.results if r.level == "mandatory" and not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "passed": not self.failed_mandatory(),
            "controls": [r.to_dict() for r in self.results],
        }


# ---------------------------------------------------------------- checks policy.py does not have


def _versioning(bucket: Registration, graph: list[Registration]) -> list[str]:
    found = [c for c in policy._companions(graph, bucket, BUCKET_VERSIONING)
             if (c.inputs.get("versioningConfiguration") or {}).get("status") == "Enabled"]
    return [] if found else ["versioning is not enabled"]


def _lifecycle(bucket: Registration, graph: list[Registration]) -> list[str]:
    rules = [rule for c in policy._companions(graph, bucket, BUCKET_LIFECYCLE)
             for rule in policy._listify(c.inputs.get("rules")) if isinstance(rule, dict)]
    return [] if any(rule.get("status") == "Enabled" for rule in rules) else ["no enabled lifecycle rule"]


def _kms_bucket(bucket: Registration, graph: list[Registration]) -> list[str]:
    algorithms = [
        (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
        for c in policy._companions(graph, bucket, BUCKET_SSE)
        for rule in policy._listify(c.inputs.get("rules")) if isinstance(rule, dict)
    ]
    if any(a in ("aws:kms", "aws:kms:dsse") for a in algorithms):
        return []
    return ["default encryption is not SSE-KMS"]


def _network_isolation(model: Registration, graph: list[Registration]) -> list[str]:
    return [] if model.inputs.get("enableNetworkIsolation") is True else ["network isolation is not enabled"]


#: the AWS-managed SNS key: its key policy cannot let CloudWatch alarms publish to the topic
AWS_MANAGED_SNS_KEYS = frozenset({"alias/aws/sns"})


def _topic_kms(topic: Registration, graph: list[Registration]) -> list[str]:
    key = topic.inputs.get("kmsMasterKeyId")
    if not key:
        return ["the topic is not encrypted with a KMS key (kmsMasterKeyId)"]
    if key in AWS_MANAGED_SNS_KEYS:
        return [f"the topic is encrypted with {key}, which CloudWatch alarms cannot use to publish"]
    return []


def _variant_capacity(config: Registration, graph: list[Registration]) -> list[str]:
    # SageMaker.4 is about each production variant: a canary on one instance fails it even
    # when the primary runs several (shadow variants are not production variants)
    found = []
    for variant in policy._listify(config.inputs.get("productionVariants")):
        if not isinstance(variant, dict) or variant.get("serverlessConfig"):
            continue  # serverless: AWS spreads it over availability zones
        count = int(variant.get("initialInstanceCount") or 0)
        if count < 2:
            found.append(f"production variant {variant.get('variantName') or '(unnamed)'} starts {count} "
                         "instance; one failure takes its share of the traffic down")
    return found


def _key_rotation(key: Registration, graph: list[Registration]) -> list[str]:
    if key.inputs.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") not in ("SYMMETRIC_DEFAULT", None):
        return []  # rotation exists for symmetric keys only
    return [] if key.inputs.get("enableKeyRotation") is True else ["automatic key rotation is off"]


def _trust(role: Registration, graph: list[Registration]) -> list[str]:
    found = []
    for st in policy.statements(role.inputs.get("assumeRolePolicy")):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        services = policy._listify(principal.get("Service")) if isinstance(principal, dict) else []
        if principal in ("*", {"AWS": "*"}) or not services or set(principal) - {"Service"}:
            found.append(f"statement {st.get('Sid') or '(no Sid)'} lets a non-service principal assume the role")
    return found if found else ([] if policy.statements(role.inputs.get("assumeRolePolicy"))
                                else ["the role has no trust policy"])


def _production_only(env: Environment) -> str | None:
    return None if policy.is_production(env) else f"'{env.env}' is not a production environment"


CONTROLS: tuple[Control, ...] = (
    Control("S3.8", True, "S3 buckets should block public access", BUCKET, "mandatory", policy="storage-private"),
    Control("S3.5", True, "S3 buckets should require requests to use SSL", BUCKET, "mandatory",
            policy="storage-private"),
    Control("s3-encryption", False, "S3 buckets have default server-side encryption", BUCKET, "mandatory",
            policy="storage-encrypted"),
    Control("S3.17", True, "S3 buckets should be encrypted at rest with AWS KMS keys", BUCKET, "advisory",
            check=_kms_bucket, fix="set `encryption: kms` (top level of the spec, or the environment's overlay)"),
    Control("S3.14", True, "S3 buckets should have versioning enabled", BUCKET, "mandatory", check=_versioning,
            fix="every ModelOps bucket is versioned: restore the versioning of components/storage.py SecureBucket"),
    Control("S3.13", True, "S3 buckets should have lifecycle configurations", BUCKET, "mandatory", check=_lifecycle,
            fix="every ModelOps bucket expires old versions (`datasets.<name>.retention.noncurrent_days`): restore the "
                "lifecycle of components/storage.py SecureBucket"),
    Control("endpoint-kms", False, "SageMaker endpoint configurations encrypt volumes and data capture with KMS",
            ENDPOINT_CONFIG, "mandatory", policy="endpoint-encrypted"),
    Control("SageMaker.4", True, "SageMaker endpoint production variants should have an initial instance count "
            "greater than 1", ENDPOINT_CONFIG, "mandatory", policy="prod-min-instances", check=_variant_capacity,
            applies=_production_only,
            fix="set `models.<name>.serving.instance_count: 2` (or `models.<name>.serving.autoscaling.min: 2`) in "
                "the environment's overlay; a canary runs as many instances as that, up to 2 (or record a reviewed "
                "exception: `policies: {prod-min-instances: advisory}`)"),
    Control("SageMaker.5", True, "SageMaker models should have network isolation enabled", SAGEMAKER_MODEL,
            "mandatory", check=_network_isolation,
            fix="ModelOps models always run network-isolated: restore enable_network_isolation in components/model.py"),
    Control("SNS.1", True, "SNS topics should be encrypted at-rest using AWS KMS", TOPIC, "mandatory",
            check=_topic_kms, fix="topics use a customer-managed key whatever the storage encryption (a topics key "
                                  "under `encryption: sse-s3`): restore it in components/monitor.py Notifications"),
    Control("KMS.4", True, "AWS KMS key rotation should be enabled", KMS_KEY, "mandatory", check=_key_rotation,
            fix="ModelOps keys always rotate: restore enable_key_rotation in components/environment.py"),
    Control("iam-no-wildcard", False, "IAM role policies allow no '*' actions and no Resource '*' where a "
            "narrower resource exists", ROLE_POLICY, "mandatory", policy="no-wildcard-iam"),
    Control("iam-trust", False, "IAM roles are assumable only by an AWS service principal", ROLE, "mandatory",
            check=_trust, fix="let only the AWS service principal that runs the workload assume the role"),
)

#: which policy findings belong to which control (storage-private covers two controls)
_TLS_MESSAGE = "does not deny requests without TLS"


def _policy_findings(env: Environment, graph: list[Registration]) -> list[policy.Finding]:
    # every rule on, whatever the spec's levels: the report tells the truth, levels decide the exit
    forced = dataclasses.replace(env, policies={rule: "mandatory" for rule in policy.POLICY_IDS})
    return policy.evaluate(forced, graph)


def _finding_control(finding: policy.Finding) -> str:
    if finding.policy == "storage-private":
        return "S3.5" if _TLS_MESSAGE in finding.message else "S3.8"
    return {"storage-encrypted": "s3-encryption", "endpoint-encrypted": "endpoint-kms",
            "no-wildcard-iam": "iam-no-wildcard"}.get(finding.policy, "")


def _bucket_of(resource: Registration, by_urn: dict[str, Registration], buckets: list[Registration]) -> str:
    """The bucket a bucket companion (policy, access block) belongs to: its name is what we count."""
    if resource.type == BUCKET:
        return resource.name
    for bucket in buckets:
        if bucket.urn in resource.dependencies or resource.inputs.get("bucket") in {
                bucket.id, bucket.inputs.get("bucket")} - {None, ""}:
            return bucket.name
    return resource.name


def evaluate_graph(env: Environment, graph: Iterable[Registration]) -> EnvironmentReport:
    """Every control on one environment's rendered graph.

    Example::

        report = evaluate_graph(env, render_graph(env, cache))
        [r.control.id for r in report.results if not r.passed]
    """
    graph = [r for r in graph]
    custom = [r for r in graph if r.custom]
    by_urn = {r.urn: r for r in graph}
    buckets = [r for r in custom if r.type == BUCKET]
    findings = _policy_findings(env, graph)
    results = []
    for control in CONTROLS:
        of_type = [r for r in custom if r.type == control.resource_type]
        result = ControlResult(control, _effective_level(control, env), len(of_type))
        reason = control.applies(env)
        if reason:
            result.not_applicable = reason
            results.append(result)
            continue
        if control.check is not None:
            for resource in of_type:
                result.failures += [(resource.name, message) for message in control.check(resource, graph)]
        else:
            for finding in findings:
                if _finding_control(finding) != control.id:
                    continue
                resource = by_urn.get(finding.resource)
                if resource is not None:
                    name = _bucket_of(resource, by_urn, buckets) if control.resource_type == BUCKET else resource.name
                elif control.resource_type == ENDPOINT_CONFIG and finding.entity.startswith("models."):
                    # an environment-level finding about a model: count its endpoint configuration
                    model = finding.entity.split(".", 1)[1]
                    owned = [r for r in of_type if policy.entity_of(r, by_urn, env) == finding.entity]
                    name = owned[0].name if owned else model
                else:
                    name = finding.entity or finding.resource
                result.failures.append((name, finding.message))
        result.failures = sorted(set(result.failures))
        results.append(result)
    return EnvironmentReport(env.project, env.env, results)


def _effective_level(control: Control, env: Environment) -> str:
    # only a level the spec sets is a reviewed exception; policy.py's advisory defaults are not
    spec_level = (env.policies or {}).get(control.policy) if control.policy else None
    if control.level == "mandatory" and spec_level in ("advisory", "off"):
        return "advisory"  # the team's reviewed exception, recorded in the spec
    return control.level


def control_findings(env: Environment, graph: list[Registration]) -> list[policy.Finding]:
    """The failures of the controls checked here, as policy findings (``policy`` is the control id).

    The controls mapped to a policy rule are left out: :func:`modelops.checks.policy.evaluate` reports
    them. Reads the graph once; an entity is looked up for failures only.

    Example::

        [f.line() for f in control_findings(env, graph) if f.level == "mandatory"]
    """
    by_type: dict[str, list[Registration]] = {}
    for reg in graph:
        if reg.custom:
            by_type.setdefault(reg.type, []).append(reg)
    found: list[policy.Finding] = []
    by_urn: dict[str, Registration] | None = None
    for control in CONTROLS:
        if control.check is None or control.applies(env):
            continue
        level = _effective_level(control, env)
        for resource in by_type.get(control.resource_type, ()):
            messages = control.check(resource, graph)
            if not messages:
                continue
            if by_urn is None:
                by_urn = {r.urn: r for r in graph}
            entity = policy.entity_of(resource, by_urn, env)
            name = entity.split(".", 1)[1] if "." in entity else "<name>"
            fix = control.fix.replace("<name>", name)
            found += [policy.Finding(control.id, level, resource.urn, entity, message, fix) for message in messages]
    return found


def findings(env: Environment, graph: Iterable[Registration]) -> list[policy.Finding]:
    """Every policy finding and every failure of a control checked here, on one rendered graph:
    what ``validate``, ``up`` and ``diff --fail-on policy`` gate on. Mandatory first.

    Example::

        mandatory = [f for f in findings(env, graph) if f.level == "mandatory"]
    """
    graph = graph if isinstance(graph, list) else list(graph)
    found = set(policy.evaluate(env, graph))
    # a model under prod-min-instances fails SageMaker.4 for the same reason: one line, not two,
    # unless the control is the stricter (prod-min-instances advisory by default, SageMaker.4 mandatory)
    capacity = {(f.entity, f.level) for f in found if f.policy == "prod-min-instances"}
    found |= {f for f in control_findings(env, graph) if f.policy != "SageMaker.4" or (f.entity, f.level) not in capacity}
    return sorted(found, key=lambda f: (f.level != "mandatory", f.policy, f.entity, f.resource, f.message))
