"""JSON documents (IAM policies, dashboards) whose values may be Outputs, in one step.

``pulumi.Output.json_dumps`` lifts every dict and list of its argument into an Output of its
own (an ``Output.all`` and an ``apply`` per container, each with futures and tasks): a
dashboard of a thousand models is tens of thousands of Outputs for one string.
:func:`json_document` waits for the Output *leaves* only, in one ``Output.all``, and
serialises the filled-in document once. The string is the one ``json_dumps`` gives (same
``json.dumps`` defaults, same key order), secret and unknown leaves propagate the same way.

Example::

    json_document({"Version": "2012-10-17", "Statement": [{"Resource": bucket.arn, ...}]})
"""

from __future__ import annotations

import json
from typing import Any

import pulumi


class _Leaf:
    """Where the i-th Output of a document goes."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _template(value: Any, leaves: list[pulumi.Output]) -> Any:
    if isinstance(value, pulumi.Output):
        leaves.append(value)
        return _Leaf(len(leaves) - 1)
    if isinstance(value, dict):
        return {k: _template(v, leaves) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_template(v, leaves) for v in value]
    return value


def _fill(template: Any, values: list[Any]) -> Any:
    if isinstance(template, _Leaf):
        return values[template.index]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


def json_document(document: Any) -> pulumi.Input[str]:
    """``document`` as a JSON string; an Output when any value in it is one (waiting for all of them once)."""
    leaves: list[pulumi.Output] = []
    template = _template(document, leaves)
    if not leaves:
        return json.dumps(template)
    return pulumi.Output.all(*leaves).apply(lambda values: json.dumps(_fill(template, values)))
