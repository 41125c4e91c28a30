"""The Pulumi program: ``pulumi up --stack <stack>`` deploys one stack of one environment.

An environment is a shared stack, named after it (``dev``: keys, artifact bucket, Glue
database, topics, dashboard), and group stacks ``<env>.<group>[.<n>]`` (the datasets, models
and monitors of one owner, in partitions of bounded size) that read the shared stack's
outputs through a ``pulumi.StackReference``: see docs/stacks.md and ``modelops stacks``.
Deploy the shared stack first. The stack name says which stack this is.

Config (``stacks/Pulumi.<stack>.yaml``, written by ``modelops stacks --env E --write``):
``modelops:spec`` (default ``modelops.yaml``, relative to the project root),
``modelops:environment`` (default: the stack name up to its first dot) and, in a group
stack, ``modelops:partitions`` (the group's recorded partition count). Models must be
built before (``modelops build``, or CI's build step): deploying never trains.

The same program runs in-process under the mock runtime (``modelops plan``, ``modelops up``
against the local emulator), so what is reviewed is what is deployed.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

# the project is installed in the stack's virtualenv (`pip install -c constraints.txt -e .`):
# the components are the package modelops.components, kept in the top-level components/
from modelops.errors import ModelOpsError
from modelops.graph.split import stack_program
from modelops.graph.stacks import layout
from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    config = pulumi.Config("modelops")
    spec = Path(config.get("spec") or "modelops.yaml")
    spec_path = spec if spec.is_absolute() else ROOT / spec
    stack = pulumi.get_stack()
    env_name = config.get("environment") or stack.split(".", 1)[0]
    try:
        env = attach_artifacts(load_environment(spec_path, env_name), build=False)
        # the partition counts recorded in stacks/Pulumi.<env>.<group>.yaml: every stack of the
        # environment sees the same split
        program = stack_program(env, layout(env), stack)
    except ModelOpsError as err:
        # The same one-line message as `modelops validate`; a traceback would only hide it.
        raise pulumi.RunError(str(err)) from None
    program()


main()
