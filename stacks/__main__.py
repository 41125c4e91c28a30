"""The Pulumi program: ``pulumi up --stack <stack>`` deploys one stack of one environment.

An environment is a shared stack, named after it (``dev``: keys, artifact bucket, Glue
database, topics, dashboard), and group stacks ``<env>.<group>[.<n>]`` (the datasets, models
and monitors of one owner, in partitions of bounded size) that read the shared stack's
outputs through a ``pulumi.StackReference``: see docs/stacks.md and ``modelops stacks``.
Deploy the shared stack first. The stack name says which stack this is. The stack
``registry`` is the project's model registry (``components/registry.py``, docs/registry.md),
deployed before every environment.

Config (``stacks/Pulumi.<stack>.yaml``, written by ``modelops stacks --env E --write``):
``modelops:spec`` (default ``modelops.yaml``, relative to the project root),
``modelops:environment`` (default: the stack name up to its first dot) and, in a group
stack, ``modelops:partitions`` (the group's recorded partition count). Models must be
built before (``modelops build``, or CI's build step): deploying never trains. A version an
environment pins (primary, canary, shadow) that is not in ``.modelops/artifacts/`` (a fresh
CI runner) is copied out of the registry, with the ambient AWS credentials, and its digest
checked; a version found nowhere fails the run with the place that pins it.

Every SageMaker model reads its package out of the registry, found by its deterministic
names (bucket ``<project>-registry-<account>``, key ``alias/<project>-registry``): no stack
config and no stack reference to the registry stack is needed. The program looks every
served version up there through data sources (``aws.s3.get_objects``, ``aws.kms.get_alias``),
so ``pulumi preview`` fails as ``pulumi up`` does on a version the registry lacks, with
one line naming the spec path, model, variant and digest (docs/registry.md).

The same program runs in-process under the mock runtime (``modelops plan``, ``modelops up``
against the local emulator), so what is reviewed is what is deployed.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

# the project is installed in the stack's virtualenv (`pip install -c constraints.txt -e .`):
# the components are the package modelops.components, kept in the top-level components/
from modelops.components import naming
from modelops.components.registry import program as registry_program
from modelops.errors import ModelOpsError, SpecError
from modelops.graph.split import stack_program
from modelops.graph.stacks import layout
from modelops.local.server import REAL_AWS, Target
from modelops.ml.artifacts import attach_artifacts, default_root
from modelops.registry import Registry, fetch_pins
from modelops.spec.envs import check, list_environments, load_environment

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    config = pulumi.Config("modelops")
    spec = Path(config.get("spec") or "modelops.yaml")
    spec_path = spec if spec.is_absolute() else ROOT / spec
    stack = pulumi.get_stack()
    env_name = config.get("environment") or stack.split(".", 1)[0]
    try:
        if stack == naming.REGISTRY_STACK:
            # the registry holds every model of the base spec: any environment resolves the same models
            # and is read by every environment: those in other accounts are granted read (docs/registry.md)
            problems, envs = check(spec_path)
            if problems:
                raise SpecError(problems)
            program = registry_program(envs[list_environments(spec_path)[0]], envs.values())
            program()
            return
        env = load_environment(spec_path, env_name)
        fetch_pins(env, default_root(env), lambda: _registry(env))
        env = attach_artifacts(env, build=False)
        # the partition counts recorded in stacks/Pulumi.<env>.<group>.yaml: every stack of the
        # environment sees the same split
        program = stack_program(env, layout(env), stack)
    except ModelOpsError as err:
        # The same one-line message as `modelops validate`; a traceback would only hide it.
        raise pulumi.RunError(str(err)) from None
    program()


def _registry(env) -> Registry:
    """The project's registry in its account (``registry.account``, else the one being deployed to)
    and region, read with the ambient credentials (the deploy role)."""
    target = Target.for_project(ROOT, REAL_AWS, allow_aws=True)
    return Registry.at(target.clients(env.region), env.project, "AWS", account=env.registry_account)


main()
