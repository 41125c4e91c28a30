"""Floor programs: the least work each measured step could do, run as their own process.

* ``yaml FILES...`` parses the files with PyYAML's C loader (the floor of ``validate``);
* ``render PLAN.json`` runs a bare Pulumi program that registers the same resources as a
  rendered plan -- the same ``pulumi_aws`` classes, names and parent components, with only
  the required inputs, as plain strings (no outputs of other resources) -- under the same
  mock runtime and render backend (the floor of ``plan``).

Example::

    python -m benchmarks.floor render /tmp/plan.json
"""

from __future__ import annotations

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


def bare_render(plan_json: str) -> int:
    """Register every resource of a plan with its class and required inputs only, no component code."""
    import pulumi
    import pulumi_aws  # noqa: F401 - a real program imports the provider SDK

    from modelops.render import RenderBackend
    from modelops.runtime import run

    required: dict[str, tuple[type, list[str]]] = {}

    def resource_class(type_: str) -> tuple[type, list[str]]:
        # "aws:sns/topic:Topic" -> pulumi_aws.sns.Topic and its required arguments
        if type_ not in required:
            _, module, cls = type_.split(":")
            required[type_] = (getattr(getattr(pulumi_aws, module.split("/")[0]), cls), [])
        return required[type_]

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
                if r["custom"]:
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

    regs = run(program, RenderBackend(), project=plan["project"], stack=plan["stack"])
    if len(regs) != len(resources):
        raise SystemExit(f"floor registered {len(regs)} resources, the plan has {len(resources)}")
    return len(regs)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m benchmarks.floor yaml FILES... | render PLAN.json")
    what, rest = argv[0], argv[1:]
    if what == "yaml":
        print(parse_yaml(rest))
    elif what == "render":
        print(bare_render(rest[0]))
    else:
        raise SystemExit(f"unknown floor {what}")


if __name__ == "__main__":
    main()
    # the same exit as the modelops command (no object-by-object teardown): only the work compared
    from modelops.cli import exit_now

    exit_now(0)
