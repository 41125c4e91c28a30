"""docs/spec.md is generated from the schema and committed up to date."""

from __future__ import annotations

from modelops.spec.schema_docs import DOC_PATH, SECTIONS, VALUE_TYPES, generate, main
from modelops.spec.validate import schema


def test_committed_reference_is_up_to_date():
    assert DOC_PATH.read_text(encoding="utf-8") == generate(), "run: python -m modelops.spec.schema_docs --write"
    assert main(["--check"]) == 0


def test_every_definition_and_field_is_documented():
    defs = schema()["$defs"]
    documented = {key for key, _, _ in SECTIONS} | set(VALUE_TYPES)
    assert set(defs) <= documented, "add the new $defs entry to modelops.spec.schema_docs.SECTIONS"
    text = generate()
    for key, _, _ in SECTIONS:
        node = schema() if not key else defs[key]
        for name in node.get("properties", {}):
            assert f"| `{name}` |" in text, name
