"""Several accounts at the embedded emulator: who calls, and what another account's policy lets it do.

moto serves several accounts: a caller acts in the account of its credentials, and
``sts:AssumeRole`` into ``arn:aws:iam::222222222222:role/x`` gives credentials that act in
222222222222, with resources of their own. moto evaluates no cross-account policy: any
account may read any bucket (``s3_allow_crossdomain_access``), and its KMS finds a key only
in the caller's own account. AWS lets another account in only when the resource's policy
grants it (and the caller's own IAM policy allows it). The emulator evaluates the resource
side, so that a refusal is a refusal:

- an object request (``GetObject``, ``PutObject``, …) from another account than the
  bucket's is allowed only by a bucket policy statement naming the caller (its account
  root, with conditions, or its role) whose conditions hold, and no such ``Deny``;
- ``kms:DescribeKey`` of a key ARN or alias ARN of another account is answered from that
  account when its key policy grants the caller, else ``AccessDeniedException``.

Not evaluated: the caller's own IAM policies, ``ListObjectsV2`` across accounts (moto
answers it without asking the bucket), ``kms:Decrypt`` (moto's S3 stores objects without
calling KMS). docs/local.md says so.

Example::

    evaluate_resource_policy(policy, "s3:GetObject", "arn:aws:s3:::b/k", Caller("222222222222",
                             "arn:aws:iam::222222222222:role/r"), {})      # 'allow', 'deny' or 'neutral'
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

#: moto's default account: the caller of credentials no IAM backend knows (``testing``)
DEFAULT_ACCOUNT = "123456789012"
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/|X-Amz-Credential=([A-Za-z0-9]+)(?:/|%2F)")

_current = threading.local()


@dataclass(frozen=True)
class Caller:
    """The account and principal of one request: an assumed role's role ARN, else the account root."""

    account: str
    principal: str


def caller_of(environ: dict[str, Any]) -> Caller:
    """The caller of a WSGI request, from its access key as moto's IAM knows it."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "")) or _CREDENTIAL.search(environ.get("QUERY_STRING", ""))
    access_key = (found.group(1) or found.group(2)) if found else ""
    from moto.iam.models import iam_backends

    for account_id, account in list(iam_backends.items()):
        for partition in list(account.keys()):
            key = account[partition].access_keys.get(access_key)
            if key is not None:
                role = getattr(key, "role_arn", None)
                return Caller(account_id, str(role) if role else f"arn:{partition}:iam::{account_id}:root")
    return Caller(DEFAULT_ACCOUNT, f"arn:aws:iam::{DEFAULT_ACCOUNT}:root")


def current_caller() -> Caller | None:
    """The caller of the request this thread serves (None outside a request)."""
    return getattr(_current, "caller", None)


def as_list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, str(p)) for p in as_list(patterns))


def statement_covers(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Whether a policy statement's ``Action``/``NotAction`` and ``Resource``/``NotResource``
    (wildcards as IAM's) cover ``action`` on ``resource``; its principal and conditions aside."""
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action):
            return False
    elif not _matches(statement.get("Action", []), action):
        return False
    if "NotResource" in statement:
        return not _matches(statement["NotResource"], resource)
    return "Resource" not in statement or _matches(statement["Resource"], resource)


def _names(principal: Any, caller: Caller) -> bool:
    """Whether a statement's ``Principal`` names ``caller``: everyone, its account (root or id) or its role."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    wanted = {caller.principal, caller.account, f"arn:aws:iam::{caller.account}:root", "*"}
    return any(str(p) in wanted for p in as_list(principal.get("AWS", [])))


def evaluate_resource_policy(policy: dict[str, Any], action: str, resource: str, caller: Caller,
                             context: dict[str, str], conditions_hold: Callable[[dict, dict], bool]) -> str:
    """``"deny"``, ``"allow"`` or ``"neutral"`` for ``caller`` against a resource policy: a ``Deny``
    naming it whose conditions hold wins, then such an ``Allow``. ``context`` gets
    ``aws:PrincipalArn`` and ``aws:PrincipalAccount`` of the caller."""
    context = {**context, "aws:principalarn": caller.principal, "aws:principalaccount": caller.account}
    allowed = False
    for statement in as_list(policy.get("Statement", [])):
        if not statement_covers(statement, action, resource):
            continue
        if not _names(statement.get("Principal"), caller):
            continue
        if not conditions_hold(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "neutral"


class CallerAware:
    """WSGI middleware: records each request's caller (:func:`current_caller`), and answers
    ``kms:DescribeKey`` of another account's key (ARN or alias ARN) as KMS does: from that
    account, when its key policy grants the caller."""

    def __init__(self, app: Any, conditions_hold: Callable[[dict, dict], bool]) -> None:
        self._app, self._conditions_hold = app, conditions_hold

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        _current.caller = caller = caller_of(environ)
        try:
            if environ.get("HTTP_X_AMZ_TARGET") == "TrentService.DescribeKey":
                answer = self._describe_key(environ, caller)
                if answer is not None:
                    status, body = answer
                    start_response(status, [("Content-Type", "application/x-amz-json-1.1"),
                                            ("Content-Length", str(len(body)))])
                    return [body]
            return self._app(environ, start_response)
        finally:
            _current.caller = None

    def _describe_key(self, environ: dict[str, Any], caller: Caller) -> tuple[str, bytes] | None:
        stream = environ["wsgi.input"]
        raw = stream.read()
        environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again when this is not ours to answer
        try:
            key_id = str(json.loads(raw or b"{}").get("KeyId", ""))
        except ValueError:
            return None
        parts = key_id.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn" or parts[4] == caller.account:
            return None
        region, account = parts[3], parts[4]
        from moto.kms.models import kms_backends

        backend = kms_backends[account][region]
        denied = (b'{"__type": "AccessDeniedException", "message": "User: ' + caller.principal.encode()
                  + b' is not authorized to perform: kms:DescribeKey on resource: ' + key_id.encode()
                  + b' because no resource-based policy allows the kms:DescribeKey action"}')
        try:
            key = backend.keys[backend.any_id_to_key_id(key_id)]
        except (KeyError, TypeError, AttributeError):
            # KMS does not tell another account whether a key exists
            return "400 Bad Request", denied
        verdict = evaluate_resource_policy(json.loads(key.policy or "{}"), "kms:DescribeKey", "*", caller, {},
                                           self._conditions_hold)
        if verdict != "allow":
            return "400 Bad Request", denied
        return "200 OK", json.dumps({"KeyMetadata": key.to_dict()["KeyMetadata"]}).encode()
