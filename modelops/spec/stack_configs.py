"""The stack configs (``stacks/Pulumi.<stack>.yaml``) a spec is deployed with, checked against it.

Each stack config that deploys this spec says the region (``aws:region``) and the account
(``aws:allowedAccountIds``, the deploy role of ``aws:assumeRoles``) its stack is created in;
the environment it deploys must say the same (E-REGION-MISMATCH, E-ACCOUNT-MISMATCH), or the
names and ARNs the program builds point at one place while the resources go to another.

Example::

    stack_regions("modelops.yaml")       # {'dev': [('eu-west-1', 'stacks/Pulumi.dev.yaml', 4, 15)], ...}
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

from modelops.errors import Problem, SpecError
from modelops.spec.loader import load_yaml
from modelops.spec.problems import Locator

__all__ = ["STACKS_DIR", "account_mismatches", "account_problems", "region_problems", "stack_accounts", "stack_configs",
           "stack_regions", "stacks_dir"]

STACKS_DIR = "stacks"


def stacks_dir(spec_path: str | os.PathLike[str]) -> Path:
    """The ``stacks/`` directory beside the spec: its overlays and stack configs."""
    return Path(os.path.abspath(spec_path)).parent / STACKS_DIR


def stack_regions(spec_path: str | os.PathLike[str]) -> dict[str, list[tuple[str, str, int, int]]]:
    """Per environment of this spec: (region, stack config file, line, column) of each
    ``stacks/Pulumi.<stack>.yaml`` that deploys it with an ``aws:region`` (:func:`stack_configs`)."""
    found: dict[str, list[tuple[str, str, int, int]]] = {}
    for env, doc, config in stack_configs(spec_path):
        if isinstance(config.get("aws:region"), str):
            line, column = doc.value_position(("config", "aws:region"))
            found.setdefault(env, []).append((config["aws:region"], doc.file, line, column))
    return found


def stack_configs(spec_path: str | os.PathLike[str]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(environment, parsed file, its ``config``) of each ``stacks/Pulumi.<stack>.yaml`` that
    deploys this spec. A stack deploys the environment ``modelops:environment`` (default: the
    stack name up to its first dot) of the spec ``modelops:spec`` (default ``modelops.yaml``,
    relative to the project root), as the program in ``stacks/__main__.py`` reads them. A file
    that does not parse is Pulumi's to report."""
    stacks = stacks_dir(spec_path)
    if not stacks.is_dir():
        return
    spec = Path(os.path.abspath(spec_path))
    for item in sorted(stacks.glob("Pulumi.*.yaml")):
        try:
            doc = load_yaml(item, strict=False, allow_empty=True)
        except SpecError:
            continue
        config = doc.data.get("config")
        if not isinstance(config, dict):
            continue
        stack = item.name[len("Pulumi."): -len(".yaml")]
        target = Path(str(config.get("modelops:spec") or "modelops.yaml"))
        if os.path.abspath(target if target.is_absolute() else stacks.parent / target) != str(spec):
            continue
        yield str(config.get("modelops:environment") or stack.split(".", 1)[0]), doc, config


def region_problems(merged: dict[str, Any], where: Locator, stacks: list[tuple[str, str, int, int]]) -> list[Problem]:
    """The spec's region against the ``aws:region`` each stack of the environment deploys to:
    image URIs and ARNs are built for the one, resources would be created in the other."""
    region = merged.get("region")
    if not isinstance(region, str):
        return []
    problems = []
    file, line, column = where.value(("region",))
    for other, config_file, config_line, config_column in stacks:
        if other != region:
            problems.append(Problem(
                "E-REGION-MISMATCH", file, line, column, "region",
                f"'{region}' is not the region the stack deploys to: {config_file}:{config_line}:{config_column} sets aws:region '{other}'",
                f"make them agree: `region: {other}` here, or `aws:region: {region}` in {config_file}",
            ))
    return problems


#: the account of an IAM role ARN, as a stack config's ``aws:assumeRoles`` names it
_ROLE_ACCOUNT = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):role/")


def stack_accounts(spec_path: str | os.PathLike[str]) -> dict[str, list[tuple[str, str, str, int, int]]]:
    """Per environment of this spec: (account, what names it, stack config file, line, column) of
    every account a ``stacks/Pulumi.<stack>.yaml`` deploying it names: each of
    ``aws:allowedAccountIds`` and the account of each ``roleArn`` of ``aws:assumeRoles``, the
    deploy role (:func:`stack_configs`)."""
    found: dict[str, list[tuple[str, str, str, int, int]]] = {}
    for env, doc, config in stack_configs(spec_path):
        named: list[tuple[str, str, tuple[Any, ...]]] = []
        allowed = config.get("aws:allowedAccountIds")
        if isinstance(allowed, list):
            named += [(str(a), "aws:allowedAccountIds", ("config", "aws:allowedAccountIds", i)) for i, a in enumerate(allowed)]
        roles = config.get("aws:assumeRoles")  # pulumi_aws v7 has no singular aws:assumeRole
        for path, role in [(("config", "aws:assumeRoles", i), r) for i, r in enumerate(roles)] if isinstance(roles, list) else []:
            arn = role.get("roleArn") if isinstance(role, dict) else None
            match = _ROLE_ACCOUNT.match(arn) if isinstance(arn, str) else None
            if match:
                named.append((match.group(1), f"the deploy role {arn}", (*path, "roleArn")))
        for account, what, path in named:
            line, column = doc.value_position(path)
            found.setdefault(env, []).append((account, what, doc.file, line, column))
    return found


def account_problems(merged: dict[str, Any], where: Locator, env: str, base_file: str,
                      stacks: list[tuple[str, str, str, int, int]]) -> list[Problem]:
    """An environment's ``account`` against the registry's and its stack configs'.

    Naming an account says the environments live in separate accounts: the registry's
    account must then be known (its bucket name and key ARN carry it), and every account
    a stack config of the environment deploys with must be that one (the registry grants
    the roles of the named account, nothing else)."""
    account = merged.get("account")
    if not isinstance(account, str):
        return []
    problems = []
    file, line, column = where.value(("account",))
    registry = merged.get("registry")
    if not isinstance(registry, dict) or not isinstance(registry.get("account"), str):
        problems.append(Problem(
            "E-ACCOUNT", file, line, column, "account",
            f"environment '{env}' names its account '{account}', but not the account of the project's registry",
            f"add `registry: {{account: \"<12 digits>\"}}` to {base_file}: the account of `pulumi up --stack registry`",
        ))
    return problems + account_mismatches(account, ("account",), where, stacks)


def account_mismatches(account: str, path: tuple[str, ...], where: Locator,
                       stacks: list[tuple[str, str, str, int, int]]) -> list[Problem]:
    """Every account a stack config names (:func:`stack_accounts`) that is not ``account``, the
    value at ``path`` of the spec."""
    file, line, column = where.value(path)
    dotted = ".".join(path)
    return [
        Problem(
            "E-ACCOUNT-MISMATCH", file, line, column, dotted,
            f"'{account}' is not the account the stack deploys to: {config_file}:{config_line}:{config_column} names {what} in '{other}'",
            f"make them agree: `{dotted}: \"{other}\"` here, or the deploy role and `aws:allowedAccountIds` of account {account} in {config_file}",
        )
        for other, what, config_file, config_line, config_column in stacks if other != account
    ]
