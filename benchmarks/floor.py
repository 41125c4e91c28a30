"""Floor programs: the least work each measured step could do, run as their own process.

* ``yaml FILES...`` parses the files with PyYAML's C loader (the floor of ``validate``);
* ``render PLAN.json`` runs a bare Pulumi program that registers the same resources as a
  rendered plan -- the same ``pulumi_aws`` classes, names and parent components, with only
  the required inputs, as plain strings (no outputs of other resources) -- under the same
  mock runtime and render backend (the floor of ``plan``);
* ``render-inputs PLAN.json`` does the same with every resource's inputs as the plan shows
  them, as plain values (no outputs of other resources, no component code): what the SDK
  costs for the inputs themselves, a reference that tells the SDK's share of ``plan`` from
  the program's.

Example::

    python -m benchmarks.floor render /tmp/plan.json
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path


def parse_yaml(files: list[str]) -> int:
    import yaml

    count = 0
    for name in files:
        with open(name, "rb") as handle:
            data = yaml.load(handle, Loader=yaml.CSafeLoader)  # noqa: S506 - CSafeLoader is safe
        count += len(data or {})
    return count


def bare_render(plan_json: str, with_inputs: bool = False) -> list:
    """Register every resource of a plan with its class and required inputs only, no component code.

    ``with_inputs``: with the plan's inputs instead, as plain values.
    """
    import pulumi
    import pulumi_aws  # noqa: F401 - a real program imports the provider SDK

    from modelops.graph.render import RenderBackend
    from modelops.graph.runtime import run

    required: dict[str, tuple[type, list[str]]] = {}

    def resource_class(type_: str) -> tuple[type, list[str]]:
        # "aws:sns/topic:Topic" -> pulumi_aws.sns.Topic and its required arguments
        if type_ not in required:
            _, module, cls = type_.split(":")
            required[type_] = (getattr(getattr(pulumi_aws, module.split("/")[0]), cls), [])
        return required[type_]

    python_names: dict[type, dict[str, str]] = {}

    def with_plan_inputs(type_: str, name: str, inputs: dict, opts: pulumi.ResourceOptions) -> None:
        cls, _ = resource_class(type_)
        if cls not in python_names:  # camelCase wire name -> the class's keyword argument
            params = inspect.signature(cls._internal_init).parameters
            python_names[cls] = {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), p): p for p in params}
        names = python_names[cls]
        cls(name, opts=opts, **{names[k]: v for k, v in inputs.items()})

    def custom(type_: str, name: str, opts: pulumi.ResourceOptions) -> None:
        cls, names = resource_class(type_)
        while True:
            try:
                cls(name, opts=opts, **{n: name for n in names})
                return
            except TypeError as exc:  # learn the required properties from the class itself
                found = re.search(r"Missing required property '(\w+)'", str(exc))
                if not found:
                    raise
                names.append(found.group(1))

    plan = json.loads(Path(plan_json).read_text())
    resources = plan["resources"]
    children: dict[str, list[dict]] = {}
    for r in resources:
        children.setdefault(r["parent"], []).append(r)
    stack_urn = next((r["parent"] for r in resources if r["parent"] and r["parent"].endswith("pulumi:pulumi:Stack::" + f"{plan['project']}-{plan['stack']}")), "")

    def program() -> None:
        def register(parent_urn: str, parent_res: pulumi.Resource | None) -> None:
            for r in children.get(parent_urn, ()):
                opts = pulumi.ResourceOptions(parent=parent_res)
                if r["custom"] and with_inputs:
                    with_plan_inputs(r["type"], r["name"], r["inputs"], opts)
                elif r["custom"]:
                    custom(r["type"], r["name"], opts)
                else:
                    comp = pulumi.ComponentResource(r["type"], r["name"], None, opts)
                    register(r["urn"], comp)
                    comp.register_outputs({})

        register(stack_urn, None)
        # resources whose parent is the stack under another spelling
        known = {r["urn"] for r in resources} | {stack_urn}
        for r in resources:
            if r["parent"] not in known:
                raise SystemExit(f"unexpected parent {r['parent']}")

    # collect=False: the process exits next, as `modelops plan` does
    regs = run(program, RenderBackend(), project=plan["project"], stack=plan["stack"], collect=False)
    if len(regs) != len(resources):
        raise SystemExit(f"floor registered {len(regs)} resources, the plan has {len(resources)}")
    return regs


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m benchmarks.floor yaml FILES... | render PLAN.json | render-inputs PLAN.json")
    what, rest = argv[0], argv[1:]
    if what == "yaml":
        print(parse_yaml(rest))
    elif what == "render":
        print(len(bare_render(rest[0])))
    elif what == "render-inputs":
        print(len(bare_render(rest[0], with_inputs=True)))
    else:
        raise SystemExit(f"unknown floor {what}")


if __name__ == "__main__":
    main()
    # the same exit as the modelops command (no object-by-object teardown): only the work compared
    from modelops.cli.app import exit_now

    exit_now(0)
