"""Security controls (AWS FSBP-mapped) over the rendered graph of every example environment.

Every example passes every control by default; each control fails when the resource it
guards is weakened (the graph is mutated after rendering, as a broken component would),
and `modelops security` exits 3 on a mandatory failure.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest
import yaml

from modelops.graph.cache import render_graph
from modelops.ml.placeholders import attach_without_training
from modelops.spec.envs import list_environments, load_environment
from modelops.graph.runtime import Registration
from modelops.checks.security import CONTROLS, evaluate_graph
from tests.helpers import ROOT
from tests.spec.helpers import run_cli
from tests.local.helpers import environment
from tests.review.helpers import BASE, cli
from modelops.local.apply import up

EXAMPLES = [ROOT / "modelops.yaml", ROOT / "examples" / "fraud" / "modelops.yaml"]
CASES = [(spec, env) for spec in EXAMPLES for env in list_environments(spec)]
FRAUD = ROOT / "examples" / "fraud" / "modelops.yaml"
_GRAPHS: dict[tuple[str, str], tuple] = {}


def _rendered(spec: Path, env_name: str):
    key = (str(spec), env_name)
    if key not in _GRAPHS:
        env = load_environment(spec, env_name)
        with tempfile.TemporaryDirectory() as tmp:
            attached, _ = attach_without_training(env, spec.parent, Path(tmp))
            graph = render_graph(attached, Path(tmp) / "cache")
        _GRAPHS[key] = (attached, graph)
    return _GRAPHS[key]


def _mutate(graph: list[Registration], type_: str, change: Callable[[dict], dict], first_only: bool = True):
    out, done = [], False
    for reg in graph:
        if reg.type == type_ and not (first_only and done):
            reg = dataclasses.replace(reg, inputs=change(dict(reg.inputs)))
            done = True
        out.append(reg)
    assert done, type_
    return out


def _policy(doc: dict) -> str:
    return json.dumps(doc)


@pytest.mark.parametrize(("spec", "env"), CASES, ids=[f"{s.parent.name}-{e}" for s, e in CASES])
def test_every_example_environment_passes_every_control(spec, env):
    attached, graph = _rendered(spec, env)
    report = evaluate_graph(attached, graph)
    assert [r.control.id for r in report.results] == [c.id for c in CONTROLS]
    failing = {r.control.id: r.failures for r in report.results if r.failures}
    assert failing == {}
    # AND each applicable control was evaluated on real resources (a control over nothing proves nothing)
    assert all(r.resources >= 1 for r in report.results), [(r.control.id, r.resources) for r in report.results]


MUTATIONS = {
    "S3.8": ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", lambda i: {**i, "restrictPublicBuckets": False}),
    "S3.5": ("aws:s3/bucketPolicy:BucketPolicy", lambda i: {**i, "policy": _policy({"Version": "2012-10-17", "Statement": []})}),
    "s3-encryption": ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                      lambda i: {**i, "rules": []}),
    "S3.17": ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              lambda i: {**i, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
    "S3.14": ("aws:s3/bucketVersioning:BucketVersioning", lambda i: {**i, "versioningConfiguration": {"status": "Suspended"}}),
    "S3.13": ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
              lambda i: {**i, "rules": [{**r, "status": "Disabled"} for r in i["rules"]]}),
    "endpoint-kms": ("aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                     lambda i: {k: v for k, v in i.items() if k != "kmsKeyArn"}),
    # a canary of one instance beside a primary of several: SageMaker.4 is per production variant
    "SageMaker.4": ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", lambda i: {**i, "productionVariants": [
        *i["productionVariants"], {"variantName": "canary", "modelName": "m", "instanceType": "ml.m5.large",
                                   "initialInstanceCount": 1, "initialVariantWeight": 0.1}]}),
    "SageMaker.5": ("aws:sagemaker/model:Model", lambda i: {**i, "enableNetworkIsolation": False}),
    "SNS.1": ("aws:sns/topic:Topic", lambda i: {k: v for k, v in i.items() if k != "kmsMasterKeyId"}),
    "KMS.4": ("aws:kms/key:Key", lambda i: {**i, "enableKeyRotation": False}),
    "iam-no-wildcard": ("aws:iam/rolePolicy:RolePolicy", lambda i: {**i, "policy": _policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})}),
    "iam-trust": ("aws:iam/role:Role", lambda i: {**i, "assumeRolePolicy": _policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})}),
}


def test_every_control_has_a_failing_case():
    assert set(MUTATIONS) == {c.id for c in CONTROLS}


@pytest.mark.parametrize("control", sorted(MUTATIONS))
def test_each_control_fails_on_the_resource_it_guards(control):
    # GIVEN fraud prod with one resource weakened
    attached, graph = _rendered(FRAUD, "prod")
    type_, change = MUTATIONS[control]
    mutated = _mutate(graph, type_, change)
    # WHEN evaluated
    report = evaluate_graph(attached, mutated)
    # THEN exactly that control fails, on exactly one resource of its type
    failing = {r.control.id: r for r in report.results if r.failures}
    assert control in failing, {k: v.failures for k, v in failing.items()}
    row = failing[control].to_dict()
    assert row["failed"] == 1 and row["passed"] == row["resources"] - 1 and row["status"] == "fail"
    others = set(failing) - {control}
    # S3.17 (KMS) implies a default encryption rule exists: removing every rule fails both
    assert others <= ({"S3.17"} if control == "s3-encryption" else set()), others


def test_a_spec_level_downgrade_makes_the_control_advisory_not_passing():
    attached, graph = _rendered(FRAUD, "prod")
    relaxed = dataclasses.replace(attached, policies={**(attached.policies or {}), "endpoint-encrypted": "advisory"})
    mutated = _mutate(graph, *MUTATIONS["endpoint-kms"])
    report = evaluate_graph(relaxed, mutated)
    [row] = [r for r in report.results if r.control.id == "endpoint-kms"]
    assert row.failures and row.level == "advisory"
    assert not report.failed_mandatory()


def test_cli_reports_every_environment_and_exits_0():
    result = run_cli("security", "examples/fraud/modelops.yaml", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert [e["env"] for e in report["environments"]] == ["dev", "prod"]
    prod = {c["control"]: c for c in report["environments"][1]["controls"]}
    assert prod["SageMaker.4"]["status"] == "pass" and prod["SageMaker.4"]["resources"] == 2
    assert prod["KMS.4"] == {**prod["KMS.4"], "resources": 1, "passed": 1, "failed": 0, "status": "pass"}
    text = run_cli("security", "--env", "dev")
    assert text.returncode == 0 and text.stdout.startswith("churn-dev: 13 controls, 12 pass, 1 n/a, 0 fail")


def test_cli_exits_3_when_a_mandatory_control_fails(tmp_path):
    # GIVEN a copy of fraud whose prod overlay runs its instance-backed model on one instance
    project = tmp_path / "fraud"
    shutil.copytree(FRAUD.parent, project, ignore=shutil.ignore_patterns(".modelops"))
    prod = project / "stacks" / "prod.yaml"
    text = prod.read_text()
    assert "instance_count: 2" in text
    prod.write_text(text.replace("instance_count: 2", "instance_count: 1"))
    # WHEN checked
    result = run_cli("security", str(project / "modelops.yaml"), "--env", "prod", cwd=tmp_path)
    # THEN exit 3, the failing control and resource named, one error line, no traceback
    assert result.returncode == 3, result.stderr
    assert "fail  SageMaker.4" in result.stdout and "1/2 endpoint configs" in result.stdout
    assert result.stderr.strip().startswith("error: mandatory security controls failed: SageMaker.4 (prod)")
    assert "Traceback" not in result.stderr


def test_cli_on_an_invalid_spec_exits_2():
    result = run_cli("security", "tests/fixtures/specs/invalid/dangling-notify.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "dangling-notify.yaml:" in result.stderr


# ---------------------------------------------------------------- hints name real settings

SCHEMA = json.loads((ROOT / "schemas" / "modelops.schema.json").read_text())
#: `x` on/of/for the dataset (model, monitor, channel): the setting is under that entity
RELATIVE = re.compile(r"`([^`]+)` (?:on|of|for|in) (?:the|a|each) (dataset|model|monitor|channel)\b")
#: ``key: value`` or ``a.b.c: value`` outside backticks: a setting written so no one can check it
#: (a key with ``_`` or ``.``, or a top-level setting: prose such as "versioned: restore" is no setting)
UNQUOTED_SETTING = re.compile(r"\b([a-z_]+(?:\.[a-z0-9_<>-]+)*): [a-z0-9{\[]")
KINDS = {"dataset": "datasets", "model": "models", "monitor": "monitors", "channel": "notifications"}


def _deref(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _child(node: dict, key: str) -> dict | None:
    node = _deref(node)
    for branch in [node, *(b for k in ("oneOf", "anyOf", "allOf") for b in node.get(k, []))]:
        branch = _deref(branch)
        if key in branch.get("properties", {}):
            return branch["properties"][key]
        names = _deref(branch.get("propertyNames", {}))
        if isinstance(branch.get("additionalProperties"), dict) and (key == "<name>" or key in names.get("enum", [key])):
            return branch["additionalProperties"]
    return None


def _settings(span: str) -> list[tuple[tuple[str, ...], object]]:
    """The (path, value) pairs a backticked span names: ``a.b: v``, ``a: {b: v}`` or a bare ``a.b``."""
    if re.fullmatch(r"[\w.<>-]+", span):
        return [(tuple(span.split(".")), None)]
    def flat(prefix: tuple[str, ...], data: object) -> list[tuple[tuple[str, ...], object]]:
        if not isinstance(data, dict):
            return [(prefix, data)]
        return [pair for key, value in data.items() for pair in flat((*prefix, *str(key).split(".")), value)]
    data = yaml.safe_load(span)
    assert isinstance(data, dict), f"`{span}` is not a setting"
    return flat((), data)


def _schema_problems(hint: str) -> list[str]:
    problems = []
    outside = re.sub(r"`[^`]*`", "``", hint)
    problems += [f"setting outside backticks: {m.group(0)!r}" for m in UNQUOTED_SETTING.finditer(outside)
                 if "_" in m.group(1) or "." in m.group(1) or m.group(1) in SCHEMA["properties"]]
    relative = {m.group(1): KINDS[m.group(2)] for m in RELATIVE.finditer(hint)}
    for span in re.findall(r"`([^`]+)`", hint):
        for path, value in _settings(span):
            if span in relative:
                path = (relative[span], "<name>", *path)
            node: dict | None = SCHEMA
            for key in path:
                node = _child(node, key) if node is not None else None
            if node is None:
                problems.append(f"`{span}`: {'.'.join(path)} is not a setting of the schema")
            elif value is not None and "enum" in _deref(node) and value not in _deref(node)["enum"]:
                problems.append(f"`{span}`: {value!r} is not one of {_deref(node)['enum']}")
    return problems


def _every_hint() -> dict[str, str]:
    """Every fix hint a policy rule or a security control can print, by where it comes from."""
    from modelops.checks import policy
    from modelops.spec.resolved import Autoscaling, Environment, Model, Monitor, Serving

    hints = {f"policy {rule} on {type_}": fix for (rule, type_), (_, fix) in policy.RESOURCE_RULES.items()}
    bare = Registration(urn="urn:b", type=policy.BUCKET, name="b", custom=True, inputs={"bucket": "b"})
    hints.update({f"policy {rule}: {message}": fix for rule, _, message, fix in policy._bucket_rules([bare])})
    models = {"a": Model(name="a", dataset="d", serving=Serving(instance_count=1)),
              "b": Model(name="b", dataset="d", serving=Serving(instance_count=1, autoscaling=Autoscaling(min=1, max=2)))}
    quiet = {n: Monitor(name=n, metric=metric, model="b", notify=()) for n, metric in (("l", "latency_p99"), ("e", "error_rate"))}
    prod = Environment(project="p", env="prod", owner="o@example.com", region="us-east-1", models=models, monitors=quiet)
    hints.update({f"policy {rule} {entity}: {message}": fix for rule, entity, message, fix in policy._env_rules(prod)})
    hints.update({f"control {c.id}": c.fix for c in CONTROLS if c.check is not None})
    return hints


def test_every_hint_of_every_rule_names_settings_the_schema_has():
    hints = _every_hint()
    # GIVEN every hint of every rule and control (each kind of environment rule triggered once)
    assert len([k for k in hints if k.startswith("policy prod-")]) >= 4 and all(hints.values()), hints
    # THEN every setting a hint names is in backticks, by its path from the top of the spec (or
    # "on the dataset" for one under an entity), and that path (and value) exists in the schema
    problems = {where: found for where, hint in hints.items() if (found := _schema_problems(hint))}
    assert problems == {}


@pytest.mark.parametrize(("hint", "problem"), [
    ("set `encryption: kms` on the dataset", "datasets.<name>.encryption is not a setting"),
    ("or keep default_monitors: true", "setting outside backticks"),
    ("set `models.m.serving.instances: 2`", "models.m.serving.instances is not a setting"),
    ("set `policies: {endpoint-encrypted: lenient}`", "'lenient' is not one of"),
])
def test_the_hint_check_catches_a_wrong_setting(hint, problem):
    assert any(problem in p for p in _schema_problems(hint)), _schema_problems(hint)


# ---------------------------------------------------------------- the controls gate validate and the PR


def _shop(tmp_path: Path) -> Path:
    shutil.copytree(BASE, tmp_path / "shop")
    return tmp_path / "shop"


def test_validate_and_the_pr_gate_fail_on_a_production_variant_of_one_instance(tmp_path):
    # GIVEN the shop spec whose prod overlay serves the ranker on one instance (prod-min-instances
    # stays advisory: only SageMaker.4, a control modelops.checks.security checks, says no)
    base = _shop(tmp_path / "base")
    head = _shop(tmp_path / "head")
    prod = head / "stacks" / "prod.yaml"
    prod.write_text(prod.read_text().replace("instance_count: 2", "instance_count: 1"))
    # WHEN validated
    result = cli("validate", "modelops.yaml", "--env", "prod", cwd=head)
    # THEN exit 2, one line, at the model in the overlay, naming the control and the real setting
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("stacks/prod.yaml:") and "models.ranker" in line and "[SageMaker.4] (prod)" in line
    assert "production variant primary starts 1 instance" in line
    assert "set `models.ranker.serving.instance_count: 2`" in line
    # AND the PR gate (diff --fail-on policy) fails on it too
    review = cli("diff", "modelops.yaml", "--base", str(base), "--env", "prod", "--fail-on", "policy", cwd=head)
    assert review.returncode == 3, review.stderr
    assert "[SageMaker.4]" in review.stderr and "Traceback" not in review.stderr
    # AND the base (two instances, so a canary would run two) passes both
    assert cli("validate", "modelops.yaml", "--env", "prod", cwd=base).returncode == 0


def test_a_reviewed_exception_lets_validate_pass_and_the_report_keeps_the_failure(tmp_path):
    head = _shop(tmp_path)
    prod = head / "stacks" / "prod.yaml"
    prod.write_text(prod.read_text().replace("instance_count: 2", "instance_count: 1"))
    spec = head / "modelops.yaml"
    spec.write_text(spec.read_text().replace("region: us-east-1\n", "region: us-east-1\npolicies: {prod-min-instances: advisory}\n"))
    assert cli("validate", "modelops.yaml", "--env", "prod", cwd=head).returncode == 0
    report = json.loads(cli("security", "modelops.yaml", "--env", "prod", "--json", cwd=head).stdout)
    [row] = [c for c in report["environments"][0]["controls"] if c["control"] == "SageMaker.4"]
    assert row["status"] == "fail" and row["level"] == "advisory"


def test_sse_s3_keeps_topics_kms_encrypted_for_every_command(tmp_path):
    # GIVEN the shop spec with S3-managed storage keys (and the endpoint-key exception sse-s3 needs)
    head = _shop(tmp_path)
    spec = head / "modelops.yaml"
    spec.write_text(spec.read_text().replace(
        "region: us-east-1\n", "region: us-east-1\nencryption: sse-s3\npolicies: {endpoint-encrypted: advisory}\n"))
    # WHEN validated and checked
    assert cli("validate", "modelops.yaml", cwd=head).returncode == 0
    result = cli("security", "modelops.yaml", "--json", cwd=head)
    # THEN SNS.1 passes on every topic of every environment (it failed on each before), and the
    # topics key rotates (KMS.4)
    assert result.returncode == 0, result.stdout + result.stderr
    for env in json.loads(result.stdout)["environments"]:
        rows = {c["control"]: c for c in env["controls"]}
        assert rows["SNS.1"]["status"] == "pass" and rows["SNS.1"]["resources"] == 1
        assert rows["KMS.4"]["status"] == "pass" and rows["KMS.4"]["resources"] == 1


def test_a_topic_on_the_aws_managed_sns_key_fails_sns_1():
    # alias/aws/sns encrypts, but CloudWatch alarms cannot publish with it: the alarms would be mute
    attached, graph = _rendered(FRAUD, "prod")
    mutated = _mutate(graph, "aws:sns/topic:Topic", lambda i: {**i, "kmsMasterKeyId": "alias/aws/sns"})
    [row] = [r for r in evaluate_graph(attached, mutated).results if r.control.id == "SNS.1"]
    assert [m for _, m in row.failures] == ["the topic is encrypted with alias/aws/sns, which CloudWatch alarms cannot use to publish"]


@pytest.mark.aws
@pytest.mark.slow
def test_up_under_sse_s3_creates_kms_encrypted_topics_on_a_rotated_key(emulator_server, artifact_root, tmp_path):
    # GIVEN churn dev with S3-managed storage keys, applied to the local emulator
    emulator_server.reset()
    env = dataclasses.replace(environment(ROOT / "modelops.yaml", "dev", artifact_root), encryption="sse-s3")
    outcome = up(env, emulator_server.target(), tmp_path)
    assert outcome.changed and all(c.ok for c in outcome.checks)
    # THEN every topic AWS holds is encrypted with a customer-managed key that rotates
    sns, kms = emulator_server.client("sns", env.region), emulator_server.client("kms", env.region)
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert len(topics) == len(env.channels) >= 1
    for arn in topics:
        key = sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId")
        assert key and key != "alias/aws/sns", key
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
        assert meta["KeyManager"] == "CUSTOMER" and kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert "alias/churn-dev-topics" in aliases
