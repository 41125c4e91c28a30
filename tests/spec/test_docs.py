"""docs/spec.md is generated from the schema and committed up to date."""

from __future__ import annotations

from modelops.spec.schema_docs import DOC_PATH, SECTIONS, VALUE_TYPES, generate, main
from modelops.spec.schema import schema


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
    from modelops.spec.schema import DOCUMENT_KINDS, fast_definition

    stale = stale_validators({kind: fast_definition(kind) for kind in DOCUMENT_KINDS})
    assert stale == [], "run: python -m modelops.spec.schema_docs --write"
    # AND validate uses them (keyed by the definition as validate computes it), compiling nothing
    import importlib

    from modelops.spec.fast_schema import MODULES, _key

    for kind, name in MODULES.items():
        assert importlib.import_module(f"modelops.spec.{name}").SCHEMA_KEY == _key(fast_definition(kind))


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


def test_the_editor_schema_of_team_files_is_generated_and_accepts_what_validate_accepts(tmp_path) -> None:
    # GIVEN the committed schema of team files (for editors: the yaml-language-server header)
    import subprocess
    import sys
    from pathlib import Path

    from modelops.spec.schema_docs import team_schema_text
    from modelops.spec.schema import TEAM_SCHEMA_PATH
    from tests.helpers import FIXTURES

    # THEN it is what the spec's schema generates
    assert TEAM_SCHEMA_PATH.read_text(encoding="utf-8") == team_schema_text(), "run: python -m modelops.spec.schema_docs --write"
    # AND an independent validator (what an editor runs) accepts the example team files, whose
    # header names it by a path that resolves to it
    teams = sorted((FIXTURES / "specs" / "valid" / "teams" / "teams").glob("*.yaml"))
    for team in teams:
        header = team.read_text(encoding="utf-8").splitlines()[0]
        assert header.startswith("# yaml-language-server: $schema=")
        assert (team.parent / header.split("=", 1)[1]).resolve() == TEAM_SCHEMA_PATH
    checker = Path(sys.executable).parent / "check-jsonschema"
    ok = subprocess.run([str(checker), "--schemafile", str(TEAM_SCHEMA_PATH), *map(str, teams)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # AND refuses what a team file must not hold (a key only the root spec sets)
    bad = tmp_path / "bad.yaml"
    bad.write_text("owner: a@example.com\nregion: eu-west-1\n", encoding="utf-8")
    refused = subprocess.run([str(checker), "--schemafile", str(TEAM_SCHEMA_PATH), str(bad)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "region" in refused.stdout + refused.stderr
