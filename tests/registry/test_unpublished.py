"""A version nobody published: plan and up refuse it at the place that pins it, and the
program's own registry lookup (a data source, answered by the emulator) stops the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.components import naming
from modelops.components.model import UnpublishedVersion
from modelops.graph.render import program_for
from modelops.graph.runtime import ProgramError, run
from modelops.local.backend import MotoBackend
from modelops.local.handlers import Context
from modelops.local.state import StateStore
from modelops.ml.artifacts import attach_artifacts
from modelops.registry.pins import unpublished_cause
from modelops.spec.envs import load_environment
from tests.helpers import Emulator
from tests.local.helpers import copy_project
from tests.registry.helpers import modelops, registry_at

MODEL = "churn-classifier"
NEVER_BUILT = "sha256:" + "1" * 64
CANARY_OVERLAY = (f"# Staging: production-like serving, not protected.\nmodels:\n  {MODEL}:\n    serving:\n"
                  f"      instance_count: 1\n      canary: {{version: \"{NEVER_BUILT}\", weight: 0.1}}\n")


@pytest.fixture()
def project(tmp_path: Path, artifact_root: Path) -> Path:
    """The churn example, its model built, staging running a canary of a version never built."""
    spec = copy_project("churn", tmp_path / "p", artifact_root)
    (spec.parent / "stacks" / "staging.yaml").write_text(CANARY_OVERLAY)
    return spec.parent


def test_plan_refuses_a_canary_nobody_built_or_published(project: Path) -> None:
    # WHEN staging, with its canary pinned to a version that was never built, is planned
    result = modelops("plan", "--env", "staging", cwd=project)
    # THEN the plan fails with one line at the canary's pin, naming the model, variant and digest
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    key = naming.registry_key(MODEL, NEVER_BUILT)
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: stacks/staging.yaml:6:25: models.{MODEL}.serving.canary.version: {MODEL} canary version "
        f"{NEVER_BUILT} is not in the registry (s3://churn-registry-123456789012/{key}); publish it "
        f"(`modelops publish {MODEL}` on the commit that built it) or pin a published version")
    # AND dev, which serves only its build, still plans
    assert modelops("plan", "--env", "dev", cwd=project).returncode == 0


@pytest.mark.aws
def test_up_refuses_a_canary_nobody_built_or_published(project: Path, emulator: Emulator) -> None:
    # WHEN staging is brought up at the emulator
    result = modelops("up", "--env", "staging", "--endpoint-url", emulator.url, cwd=project, ca_bundle=emulator.ca_bundle)
    # THEN it stops before anything is created, at the canary's pin
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert (f"stacks/staging.yaml:6:25: models.{MODEL}.serving.canary.version: {MODEL} canary version {NEVER_BUILT} "
            "is neither in .modelops/artifacts nor in the registry") in result.stderr
    sm = emulator.client("sagemaker", "eu-west-1")
    assert sm.list_models()["Models"] == [] and sm.list_endpoints()["Endpoints"] == []


@pytest.mark.aws
def test_the_programs_registry_lookup_is_answered_by_the_emulator(project: Path, emulator: Emulator) -> None:
    # GIVEN dev with its model built, and a registry at the emulator that holds nothing
    env = attach_artifacts(load_environment(project / "modelops.yaml", "dev"), build=True, root=project)
    registry = registry_at(emulator, env, project)
    digest = env.models[MODEL].artifact.digest
    # WHEN the environment's program runs against the emulator
    target = emulator.target()
    with StateStore.open(project, env.project, "dev") as state:
        backend = MotoBackend(Context(target.clients(env.region), env.region), state)
        with pytest.raises(ProgramError) as raised:
            run(program_for(env), backend, project=env.project, stack="dev")
        backend.wait_idle()
    # THEN its data source found no package, and no SageMaker model was created
    cause = unpublished_cause(raised.value)
    assert cause is not None and (cause.model, cause.variant, cause.digest) == (MODEL, "primary", digest)
    assert isinstance(cause, UnpublishedVersion)
    assert cause.uri == registry.uri(naming.registry_key(MODEL, digest))
    assert emulator.client("sagemaker", "eu-west-1").list_models()["Models"] == []
