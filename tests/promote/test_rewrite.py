"""Rewriting a pin touches only the pin: comments, order, quoting and indentation are kept."""

from __future__ import annotations

import difflib
import json
import threading

import pytest
import yaml

from modelops.errors import ApplyError, UsageError
from modelops.promote import append_record, rewrite_pin
from tests.helpers import FIXTURES

OVERLAYS = FIXTURES / "promote" / "overlays"
MODEL = "churn-classifier"
NEW = "sha256:" + "ab" * 32
OLD = "sha256:" + "1" * 64


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def test_existing_pin_changes_exactly_one_line_and_keeps_its_comment_and_quotes():
    # GIVEN an overlay that pins the model, with comments, flow maps and a second model
    text = (OVERLAYS / "pinned.yaml").read_text()
    # WHEN the pin is rewritten
    new = rewrite_pin(text, MODEL, NEW)
    # THEN exactly that line changed, keeping its double quotes and end-of-line comment
    removed, added = changes(text, new)
    assert removed == [f'    version: "{OLD}"  # promoted 2026-11-01']
    assert added == [f'    version: "{NEW}"  # promoted 2026-11-01']
    assert yaml.safe_load(new)["models"][MODEL]["version"] == NEW
    assert yaml.safe_load(new)["models"]["other-model"]["version"] == "sha256:" + "2" * 64
    assert new.endswith("# trailing comment stays last\n")


def test_single_quoted_pin_stays_single_quoted():
    text = (OVERLAYS / "pinned.yaml").read_text()
    new = rewrite_pin(text, "other-model", NEW)
    removed, added = changes(text, new)
    assert removed == ["    version: 'sha256:" + "2" * 64 + "'"]
    assert added == [f"    version: '{NEW}'"]


def test_missing_pin_is_added_as_the_models_first_key_and_nothing_else_moves():
    text = (OVERLAYS / "unpinned.yaml").read_text()
    new = rewrite_pin(text, MODEL, NEW)
    removed, added = changes(text, new)
    assert removed == []
    assert added == [f'    version: "{NEW}"']
    assert new.splitlines()[3:5] == ["  churn-classifier:", f'    version: "{NEW}"']


def test_empty_flow_overlay_gets_the_minimal_block_path_and_keeps_its_comment():
    text = (OVERLAYS / "empty.yaml").read_text()
    new = rewrite_pin(text, MODEL, NEW)
    assert new == f'# Development: the base spec as it is.\nmodels:\n  churn-classifier:\n    version: "{NEW}"\n'


def test_new_model_entry_follows_the_files_own_indentation():
    text = (OVERLAYS / "other-model.yaml").read_text()
    new = rewrite_pin(text, MODEL, NEW)
    removed, added = changes(text, new)
    assert removed == []
    assert added == ["    churn-classifier:", f'        version: "{NEW}"']


def test_flow_style_pin_is_rewritten_in_place_on_its_one_line():
    text = (OVERLAYS / "flow-pinned.yaml").read_text()
    new = rewrite_pin(text, MODEL, NEW)
    removed, added = changes(text, new)
    assert len(removed) == 1 and len(added) == 1
    assert added[0] == removed[0].replace(OLD, NEW)


def test_an_overlay_that_is_not_a_mapping_is_refused():
    with pytest.raises(UsageError, match="not a mapping"):
        rewrite_pin("- a\n- b\n", MODEL, NEW)


def test_pin_is_spliced_in_place_when_the_dumper_would_normalise_other_lines():
    # GIVEN odd spacing that any YAML dumper normalises
    text = f'models:\n  churn-classifier:\n    version:    "{OLD}"\n    serving: {{  instance_count:   2 }}\n'
    # WHEN the pin is rewritten
    new = rewrite_pin(text, MODEL, NEW)
    # THEN only the pin's token changed, the spacing around it and elsewhere is kept
    assert new == text.replace(OLD, NEW)


def test_missing_pin_is_spliced_before_the_first_key_when_the_dumper_would_normalise():
    text = "models:\n  other-model:\n    serving:\n      instance_count:  2\n"
    new = rewrite_pin(text, MODEL, NEW)
    assert new == f'models:\n  churn-classifier:\n    version: "{NEW}"\n  other-model:\n    serving:\n      instance_count:  2\n'


def test_a_rewrite_that_cannot_be_minimal_is_refused_with_the_line_to_write_by_hand():
    text = "models: {churn-classifier: {serving: {  instance_count:  2}}}\n"
    with pytest.raises(ApplyError, match=rf'would change other lines.*version: "{NEW}" by hand'):
        rewrite_pin(text, MODEL, NEW)


def test_log_appends_whole_lines_from_concurrent_writers(tmp_path):
    log = tmp_path / "promotions.jsonl"
    log.write_text('{"model": "earlier"}\n')
    records = [{"model": f"m{i}", "evidence": "x" * 2000} for i in range(40)]
    threads = [threading.Thread(target=append_record, args=(log, r)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.read_text().splitlines()
    assert lines[0] == '{"model": "earlier"}'
    assert sorted(json.loads(line)["model"] for line in lines[1:]) == sorted(r["model"] for r in records)
