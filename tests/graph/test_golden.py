"""The rendered graph of every example environment is exactly what it was before the
performance work (golden JSON saved first): speed-ups change no input of any resource.

Regenerate only on purpose (a deliberate change to what is deployed)::

    MODELOPS_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/graph/test_golden.py
"""

from __future__ import annotations

import json
import os

import pytest

from modelops.graph.render import render
from tests.graph.helpers import EXAMPLES, fixed_environment, golden_path, graph_json


@pytest.mark.parametrize(("spec", "env"), EXAMPLES, ids=[f"{s}:{e}" for s, e in EXAMPLES])
def test_example_graph_matches_golden(spec: str, env: str) -> None:
    # GIVEN an example environment with a fixed artifact
    # WHEN it is rendered by today's code
    got = graph_json(render(fixed_environment(spec, env)))
    path = golden_path(spec, env)
    if os.environ.get("MODELOPS_WRITE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    # THEN every resource, input, option and dependency is the one saved before
    want = json.loads(path.read_text())
    assert [r["urn"] for r in got["resources"]] == [r["urn"] for r in want["resources"]]
    for mine, theirs in zip(got["resources"], want["resources"]):
        assert mine == theirs, mine["urn"]
    assert got == want
