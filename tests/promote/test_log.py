"""The promotion log: whole lines, never through a symlink, hash-chained, and checked by the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from modelops.errors import ApplyError, UsageError
from modelops.promote import append_record, verify_log
from tests.helpers import ROOT

MODEL = "churn-classifier"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A spec with its stacks directory: all that --verify-log reads."""
    shutil.copy(ROOT / "modelops.yaml", tmp_path / "modelops.yaml")
    (tmp_path / "stacks").mkdir()
    return tmp_path


def log_of(project: Path) -> Path:
    return project / "stacks" / "promotions.jsonl"


def logged(log: Path, count: int) -> list[dict]:
    return [append_record(log, {"model": MODEL, "to": f"env{i}"}) for i in range(count)]


def verify_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelops", "promote", "--verify-log", *args],
        cwd=project, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


# ------------------------------------------------------------------ writing


def test_a_symlinked_log_is_refused_and_its_target_untouched(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "elsewhere.txt"
    outside.write_text("not ours\n")
    log_of(project).symlink_to(outside)
    with pytest.raises(UsageError, match=r"promotions\.jsonl: is a symbolic link; .*replace the link"):
        append_record(log_of(project), {"model": MODEL})
    assert outside.read_text() == "not ours\n"


def test_a_whole_last_record_without_its_newline_is_completed_not_fused(project):
    log = log_of(project)
    logged(log, 1)
    log.write_bytes(log.read_bytes().rstrip(b"\n"))
    append_record(log, {"model": MODEL, "to": "prod"})
    lines = log.read_text().splitlines()
    assert [json.loads(line)["to"] for line in lines] == ["env0", "prod"]
    assert verify_log(log).valid


def test_a_cut_off_last_line_is_refused_naming_it(project):
    log = log_of(project)
    logged(log, 2)
    torn = log.read_bytes() + b'{"model": "churn-classifier", "gat'
    log.write_bytes(torn)
    with pytest.raises(ApplyError, match=r"promotions\.jsonl:3: the last line is cut off .*git checkout"):
        append_record(log, {"model": MODEL})
    assert log.read_bytes() == torn


def test_concurrent_promotions_leave_one_unbroken_chain(project):
    log = log_of(project)
    records = [{"model": f"m{i}", "evidence": "x" * 2000} for i in range(40)]
    threads = [threading.Thread(target=append_record, args=(log, r)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_log(log)
    assert (result.valid, result.records, result.unchained) == (True, 40, 0)


# ------------------------------------------------------------------ checking (the CLI, as CI runs it)


def test_verify_log_passes_an_intact_log(project):
    logged(log_of(project), 3)
    run = verify_cli(project)
    assert run.returncode == 0, run.stderr
    assert "3 record(s), hash chain intact" in run.stdout


def test_verify_log_names_the_line_after_an_edited_record_and_exits_3(project):
    log = log_of(project)
    logged(log, 3)
    lines = log.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"env1"', '"prod"')
    log.write_text("".join(lines))
    run = verify_cli(project, "modelops.yaml")
    assert run.returncode == 3, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: {log}:3: previous_record does not match line 2: that line or this one was changed, "
        "or a record between them removed; compare the file with its git history (git log -p -- promotions.jsonl)"
    ]


@pytest.mark.parametrize(
    "damage,line,problem",
    [
        (lambda lines: lines[1:], 1, "the first record has previous_record 'sha256:"),
        (lambda lines: [lines[0], lines[2]], 2, "previous_record does not match line 1"),
        (lambda lines: [*lines[:2], lines[2].rstrip("\n")], 3, "the last line is cut off (no newline)"),
        (lambda lines: [lines[0], '{"model": "forged"}\n', *lines[1:]], 2, "no previous_record: a record was inserted"),
        (lambda lines: [lines[0], "\n", *lines[1:]], 2, "not a JSON record"),
    ],
    ids=["first-removed", "middle-removed", "torn-last", "unchained-inserted", "blank-line"],
)
def test_verify_log_json_reports_each_kind_of_damage_by_line(project, damage, line, problem):
    log = log_of(project)
    logged(log, 3)
    log.write_text("".join(damage(log.read_text().splitlines(keepends=True))))
    run = verify_cli(project, "--json")
    assert run.returncode == 3, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert (report["valid"], report["line"]) == (False, line)
    assert problem in report["problem"]


def test_verify_log_accepts_records_from_before_the_chain_only_at_the_start(project):
    log = log_of(project)
    log.write_text('{"model": "earlier"}\n{"model": "earlier too"}\n')
    logged(log, 2)
    result = verify_log(log)
    assert (result.valid, result.records, result.unchained) == (True, 4, 2)
    assert "the first 2 predate the chain" in str(result)


def test_verify_log_without_a_log_is_valid_and_says_so(project):
    run = verify_cli(project)
    assert run.returncode == 0 and "no promotions logged" in run.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--from", "staging"], "--verify-log checks the log and promotes nothing; drop --from/--to"),
        (["missing.yaml"], "missing.yaml: spec file not found"),
    ],
)
def test_verify_log_bad_input_exits_2_with_one_line(project, args, message):
    run = verify_cli(project, *args)
    assert run.returncode == 2, run.stdout + run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}")


def test_verify_log_refuses_a_symlinked_log_with_exit_2(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "log.jsonl"
    logged(outside, 1)
    log_of(project).symlink_to(outside)
    run = verify_cli(project)
    assert run.returncode == 2 and "is a symbolic link" in run.stderr and "Traceback" not in run.stderr
