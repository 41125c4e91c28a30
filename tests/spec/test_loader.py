"""load_yaml: plain data with positions, and every kind of file a spec must not be."""

from __future__ import annotations

import os

import pytest

from modelops.errors import SpecError
from modelops.spec.loader import MAX_BYTES, load_yaml
from tests.helpers import ROOT


def write(tmp_path, text, name="modelops.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problem_lines(exc_info):
    return [str(p) for p in exc_info.value.problems]


def test_positions_of_keys_values_and_items(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a: 1\nmodels:\n  churn:\n    serving: {instance_count: 2}\n    features: [x, 'y']\n")
    doc = load_yaml("modelops.yaml")
    assert doc.file == "modelops.yaml"
    assert doc.data == {"a": 1, "models": {"churn": {"serving": {"instance_count": 2}, "features": ["x", "y"]}}}
    assert doc.positions[("models",)] == (2, 1)
    assert doc.positions[("models", "churn")] == (3, 3)
    assert doc.positions[("models", "churn", "serving")] == (4, 5)
    assert doc.positions[("models", "churn", "serving", "instance_count")] == (4, 15)
    assert doc.value_positions[("models", "churn", "serving", "instance_count")] == (4, 31)
    assert doc.positions[("models", "churn", "features", 1)] == (5, 19)
    # a path that is not written falls back to its nearest written ancestor
    assert doc.position(("models", "churn", "serving", "autoscaling")) == (4, 5)


def test_file_name_is_relative_to_cwd_when_below_it(tmp_path, monkeypatch):
    spec = write(tmp_path, "a: 1\n")
    monkeypatch.chdir(ROOT)
    assert load_yaml(spec).file == str(spec)
    monkeypatch.chdir(tmp_path.parent)
    assert load_yaml(spec).file == os.path.join(tmp_path.name, "modelops.yaml")


def test_scalars_keep_their_yaml_types_and_dates_stay_text(tmp_path):
    doc = load_yaml(write(tmp_path, "i: 3\nf: 0.5\nb: true\nn: null\nd: 2024-01-31\ns: '12'\nk: !!str 7\n"))
    assert doc.data == {"i": 3, "f": 0.5, "b": True, "n": None, "d": "2024-01-31", "s": "12", "k": "7"}


def test_merge_keys_are_supported_and_explicit_keys_win(tmp_path):
    doc = load_yaml(write(tmp_path, "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n"))
    assert doc.data["other"] == {"x": 1, "y": 3}
    assert doc.positions[("other", "y")] == (4, 3)


def test_duplicate_keys_are_errors_not_last_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a:\n  b: 1\n  b: 2\n")
    with pytest.raises(SpecError) as exc_info:
        load_yaml("modelops.yaml")
    assert problem_lines(exc_info) == ["modelops.yaml:3:3: a.b: duplicate key (first defined at line 2, column 3); remove one of them"]
    lenient = load_yaml("modelops.yaml", strict=False)
    assert lenient.data == {"a": {"b": 1}} and len(lenient.problems) == 1


def test_a_directory_is_not_a_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    with pytest.raises(SpecError) as exc_info:
        load_yaml("specs")
    assert problem_lines(exc_info) == ["specs:1:1: is a directory, not a spec file; pass the spec file, e.g. specs/modelops.yaml"]


def test_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=r"^nope\.yaml:1:1: no such file; "):
        load_yaml("nope.yaml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a: 1\n").chmod(0)
    with pytest.raises(SpecError, match=r"^modelops\.yaml:1:1: cannot be read \(Permission denied\); check the file's permissions$"):
        load_yaml("modelops.yaml")


def test_an_oversized_file_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "big.yaml", "wb") as handle:
        handle.write(b"# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(SpecError) as exc_info:
        load_yaml("big.yaml")
    size = (MAX_BYTES // 10 + 1) * 10
    assert problem_lines(exc_info) == [f"big.yaml:1:1: file is {size:,} bytes, larger than the {MAX_BYTES:,}-byte limit; split the spec or remove unused parts"]


def test_deep_nesting_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(SpecError, match=r"^modelops\.yaml:1:\d+: nested more than 64 levels deep"):
        load_yaml("modelops.yaml")


def test_recursive_alias_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a: &x [1, *x]\n")
    with pytest.raises(SpecError):
        load_yaml("modelops.yaml")


def test_an_empty_overlay_is_allowed_when_asked(tmp_path):
    assert load_yaml(write(tmp_path, "# nothing\n"), allow_empty=True).data == {}
