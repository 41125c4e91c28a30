"""The Pulumi program: ``pulumi up --stack <env>`` deploys one environment of the spec.

Config (``stacks/Pulumi.<env>.yaml``): ``modelops:spec`` (default ``modelops.yaml``, relative
to the project root) and ``modelops:environment`` (default: the stack name). Models must be
built before (``modelops build``, or CI's build step): deploying never trains.

The same program runs in-process under the mock runtime (``modelops plan``, ``modelops up``
against the local emulator), so what is reviewed is what is deployed.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

# the project is installed in the stack's virtualenv (`pip install -c constraints.txt -e .`):
# the components are the package modelops.components, kept in the top-level components/
from modelops.components.environment import program
from modelops.errors import ModelOpsError
from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    config = pulumi.Config("modelops")
    spec = Path(config.get("spec") or "modelops.yaml")
    spec_path = spec if spec.is_absolute() else ROOT / spec
    env_name = config.get("environment") or pulumi.get_stack()
    try:
        env = attach_artifacts(load_environment(spec_path, env_name), build=False)
    except ModelOpsError as err:
        # The same one-line message as `modelops validate`; a traceback would only hide it.
        raise pulumi.RunError(str(err)) from None
    program(env)()


main()
