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


def test_the_committed_fast_validators_are_generated_from_the_schema() -> None:
    # GIVEN the schema WHEN the fast validators are generated again THEN the committed ones match
    from modelops.spec.fast_schema import stale_validators
    from modelops.spec.validate import fast_definition

    stale = stale_validators({overlay: fast_definition(overlay) for overlay in (False, True)})
    assert stale == [], "run: python -m modelops.spec.schema_docs --write"
    # AND validate uses them (keyed by the definition as validate computes it), compiling nothing
    import importlib

    from modelops.spec.fast_schema import MODULES, _key

    for overlay, name in MODULES.items():
        assert importlib.import_module(f"modelops.spec.{name}").SCHEMA_KEY == _key(fast_definition(overlay))


def test_validate_runs_no_code_planted_in_a_user_cache(tmp_path) -> None:
    # GIVEN a user cache holding a compiled-code entry of every name the schema cache once used
    import marshal
    import os
    import subprocess
    import sys

    marker = tmp_path / "code-ran"
    planted = compile(f"open({str(marker)!r}, 'w')", "<planted>", "exec")
    cache = tmp_path / "cache" / "modelops"
    cache.mkdir(parents=True)
    for name in ("schema-0.marshal", "schema.marshal"):
        (cache / name).write_bytes(marshal.dumps(planted))
    # WHEN the example spec is validated with that cache
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "modelops", "validate", "--no-policies"], cwd=DOC_PATH.parents[1],
                            env=env, capture_output=True, text=True, timeout=120)
    # THEN it is valid and nothing planted ran
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
