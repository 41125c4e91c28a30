"""Byte-level fuzzing of the loader and validator, bounded in time.

Whatever bytes a spec file holds — random, a truncation of the example, two halves of it
spliced, bytes flipped — ``load_yaml`` and ``validate`` either accept it or raise the
project's SpecError/UsageError with positions; never another exception, never a hang.
A bounded atheris (libFuzzer) run of the same property runs in a subprocess.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops.spec.envs import validate
from modelops.errors import Problem, SpecError, UsageError
from modelops.spec.loader import load_yaml
from tests.helpers import FIXTURES, ROOT

EXAMPLE = (ROOT / "examples" / "fraud" / "modelops.yaml").read_bytes()
HARNESS = FIXTURES / "hardening" / "fuzz_loader.py"
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _check(tmp_path: Path, data: bytes) -> None:
    spec = tmp_path / "modelops.yaml"
    spec.write_bytes(data)
    try:
        doc = load_yaml(spec)
    except SpecError as exc:
        assert exc.problems
        assert all(isinstance(p, Problem) and p.line >= 1 and p.column >= 1 for p in exc.problems)
        assert "\n" not in "".join(p.message + p.fix for p in exc.problems)
    else:
        assert isinstance(doc.data, dict)
    try:
        problems = validate(spec)
    except UsageError as exc:
        assert str(exc)
    else:
        assert all(p.line >= 1 and p.column >= 1 for p in problems)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes(tmp_path, data):
    _check(tmp_path, data)


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=len(EXAMPLE)))
def test_truncations_of_the_example(tmp_path, cut):
    _check(tmp_path, EXAMPLE[:cut])


@SETTINGS
@given(a=st.integers(0, len(EXAMPLE)), b=st.integers(0, len(EXAMPLE)), c=st.integers(0, len(EXAMPLE)))
def test_splices_of_the_example(tmp_path, a, b, c):
    # the head of the example up to a, then its tail from b, then its head again up to c
    _check(tmp_path, EXAMPLE[:a] + EXAMPLE[b:] + EXAMPLE[:c])


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, len(EXAMPLE) - 1), st.binary(min_size=1, max_size=3)), max_size=6))
def test_byte_edits_of_the_example(tmp_path, edits):
    data = bytearray(EXAMPLE)
    for at, replacement in edits:
        data[at : at + len(replacement)] = replacement
    _check(tmp_path, bytes(data))


@SETTINGS
@given(insert=st.sampled_from([b"&a ", b"*a", b"<<: *a\n", b"!!python/object:os.system ", b"\t", b"\x00", b"\xff\xfe",
                               b"{", b"[", b"'", b'"', b"? ", b"--- ", b"...\n", b"%YAML 1.1\n", b"\r", b"\xef\xbb\xbf"]),
       at=st.integers(0, len(EXAMPLE)))
def test_yaml_hazards_inserted_into_the_example(tmp_path, insert, at):
    _check(tmp_path, EXAMPLE[:at] + insert + EXAMPLE[at:])


def test_atheris_bounded_run(tmp_path):
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "examples" / "fraud" / "modelops.yaml", corpus / "fraud.yaml")
    shutil.copy(ROOT / "modelops.yaml", corpus / "churn.yaml")
    # GIVEN 2,000 libFuzzer-guided inputs seeded from both examples (fixed seed: reproducible)
    result = subprocess.run(
        [sys.executable, str(HARNESS), "-runs=2000", "-seed=1", "-max_len=4096", str(corpus)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    # THEN no input crashed the loader or validator
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 2000 runs" in result.stderr


def test_a_character_yaml_refuses_is_one_line_at_its_position(tmp_path):
    # GIVEN a DEL character (0x7f, not a binary file's control byte, but refused by YAML) in a value
    spec = tmp_path / "modelops.yaml"
    spec.write_bytes(b"project: churn\nowner: ml\x7fteam\n")
    # THEN the error names its line and column, on one line
    with pytest.raises(SpecError) as caught:
        load_yaml(spec)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, 10)
    assert problem.message == "YAML syntax error: unacceptable character #x007f: control characters are not allowed"
    # AND the example with one at its first byte (found by the byte-edit property) is checked as any other input
    _check(tmp_path, b"\x7f" + EXAMPLE[1:])
