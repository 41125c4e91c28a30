"""Pure pieces of the diff: permission widening, --fail-on parsing, field changes."""

from __future__ import annotations

import json

import pytest

from modelops.review.compare import field_changes
from modelops.review.report import parse_fail_on
from modelops.review.risks import widened
from modelops.errors import UsageError


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


READ = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::orders/*"}


@pytest.mark.parametrize("new,grows", [
    (doc(READ), False),
    (doc({**READ, "Action": ["s3:GetObject", "s3:PutObject"]}), True),
    (doc({**READ, "Resource": "arn:aws:s3:::events/*"}), True),
    (doc({**READ, "Resource": "arn:aws:s3:::orders/data/*"}), False),   # narrower: covered by orders/*
    (doc(READ, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}), False),
])
def test_widened_counts_only_new_allowed_pairs(new, grows):
    assert bool(widened(doc(READ), new)) is grows


def test_fail_on_parsing():
    assert parse_fail_on("data-loss, replace,policy,cost>100") == ["data-loss", "replace", "policy", "cost>100"]
    assert parse_fail_on("") == []
    with pytest.raises(UsageError, match=r"--fail-on cost>lots: expected cost>N"):
        parse_fail_on("cost>lots")
    with pytest.raises(UsageError, match=r"--fail-on dataloss: unknown condition"):
        parse_fail_on("dataloss")


def test_field_changes_are_leaf_paths():
    old = {"serving": {"instance_type": "ml.m5.large", "instance_count": 1}, "gates": [["accuracy", ">=", 0.8]]}
    new = {"serving": {"instance_type": "ml.m5.large", "instance_count": 2}, "gates": [["accuracy", ">=", 0.9]]}
    assert [c.text() for c in field_changes(old, new)] == [
        'gates: [["accuracy", ">=", 0.8]] → [["accuracy", ">=", 0.9]]', "serving.instance_count: 1 → 2"]
