"""What validate reads of a CSV source: typed in one pass per column, and kept across runs.

A spec of hundreds of datasets, each with its own CSV, must not make every ``validate``
(a pre-commit hook, every pull request) read and type every file again: the sample of an
unchanged file is kept under ``.modelops/cache/datafiles/``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

import modelops.spec.datafiles as datafiles
from modelops.spec.datafiles import _column_type, _glue_type, _value_kind, csv_sample, keep_samples
from modelops.files import file_digest
from modelops.spec.envs import check

HEADER = "customer_id,tenure,monthly_charges,contract,churned\n"
ROW = "{i},{t},{c:.2f},month-to-month,{b}\n"


def write_csv(path: Path, rows: int = 50, *, settled: bool = True) -> Path:
    path.write_text(HEADER + "".join(ROW.format(i=i, t=i % 70, c=20 + i * 0.5, b="true" if i % 3 else "false")
                                     for i in range(rows)))
    if settled:  # as a file checked out a while ago
        old = os.stat(path).st_mtime_ns - 3_600 * 10**9
        os.utime(path, ns=(old, old))
    return path


@pytest.fixture(autouse=True)
def fresh_process():
    """Each test as a new process: nothing remembered in memory."""
    datafiles._csv_sample.cache_clear()
    datafiles._stored_sample.cache_clear()
    datafiles.forget_samples()
    yield
    datafiles.forget_samples()
    datafiles._csv_sample.cache_clear()
    datafiles._stored_sample.cache_clear()


def test_an_unchanged_file_is_not_read_again_in_a_later_run(tmp_path: Path, monkeypatch) -> None:
    # GIVEN a CSV source sampled once with the project's cache
    source = write_csv(tmp_path / "customers.csv")
    cache = tmp_path / ".modelops" / "cache"
    first = csv_sample(source, cache)
    assert keep_samples() == 2, "one entry by the file's path and times, one by its content"
    assert first.columns == (("customer_id", "bigint"), ("tenure", "bigint"), ("monthly_charges", "double"),
                             ("contract", "string"), ("churned", "boolean"))
    assert len(list((cache / "datafiles").glob("*.json"))) == 2
    # WHEN a later run (a new process) samples it again, reading files is impossible
    datafiles._stored_sample.cache_clear()
    datafiles._csv_sample.cache_clear()

    def no_read(*args):
        raise AssertionError(f"read the data file again: {args[0]}")

    monkeypatch.setattr(datafiles, "_prefix", no_read)
    monkeypatch.setattr(datafiles, "_csv_sample", no_read)
    # THEN the sample comes from the cache, the same
    assert csv_sample(source, cache) == first


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    # GIVEN a sampled CSV source, then a column renamed in it
    source = write_csv(tmp_path / "customers.csv")
    cache = tmp_path / ".modelops" / "cache"
    csv_sample(source, cache)
    keep_samples()
    source.write_text(source.read_text().replace("tenure", "tenure_months", 1))
    datafiles._stored_sample.cache_clear()
    # WHEN it is sampled in a later run
    again = csv_sample(source, cache)
    # THEN the new header is what validate sees
    assert "tenure_months" in again.header and "tenure" not in again.header


@pytest.mark.parametrize("damage", [b"", b"not json", b'{"key": "other"}', b"[1, 2]",
                                    b'{"key": null, "header": [], "columns": [["a", "exec"]], "problem": ""}'])
def test_a_damaged_or_foreign_entry_is_a_miss(tmp_path: Path, damage: bytes) -> None:
    # GIVEN a sampled CSV source whose cache entry is then damaged or replaced
    source = write_csv(tmp_path / "customers.csv")
    cache = tmp_path / ".modelops" / "cache"
    want = csv_sample(source, cache)
    keep_samples()
    entries = sorted((cache / "datafiles").glob("*.json"))
    keys = [json.loads(e.read_text())["key"] for e in entries]
    for entry, key in zip(entries, keys):
        entry.write_bytes(damage.replace(b"null", json.dumps(key).encode()))
    datafiles._stored_sample.cache_clear()
    # WHEN it is sampled again THEN the file is read, and the entries written whole again
    assert csv_sample(source, cache) == want
    keep_samples()
    assert [json.loads(e.read_text())["columns"] for e in entries] == [[list(c) for c in want.columns]] * 2


def test_a_file_written_a_moment_ago_is_kept_by_content_only(tmp_path: Path) -> None:
    # GIVEN a file changed just now (a second write could keep its size and time)
    source = write_csv(tmp_path / "customers.csv", settled=False)
    cache = tmp_path / ".modelops" / "cache"
    # WHEN it is sampled THEN it is typed, and kept by its content, not by its times
    assert csv_sample(source, cache).header[0] == "customer_id"
    keep_samples()
    (entry,) = (cache / "datafiles").glob("*.json")
    assert str(source) not in json.loads(entry.read_text())["key"]


def test_a_fresh_checkout_of_the_same_files_reads_them_but_types_nothing(tmp_path: Path, monkeypatch) -> None:
    # GIVEN a file sampled in one checkout, then the same bytes in another (new path and times)
    (tmp_path / "main").mkdir()
    first = write_csv(tmp_path / "main" / "customers.csv")
    cache = tmp_path / "main" / ".modelops" / "cache"
    want = csv_sample(first, cache)
    keep_samples()
    other = tmp_path / "pr"
    other.mkdir()
    (other / "customers.csv").write_bytes(first.read_bytes())
    datafiles._stored_sample.cache_clear()
    datafiles._csv_sample.cache_clear()

    def no_typing(*args):
        raise AssertionError("typed the sample again")

    monkeypatch.setattr(datafiles, "_sample_of", no_typing)
    # WHEN the other checkout, its cache restored from the first, samples it
    assert csv_sample(other / "customers.csv", cache) == want
    # AND a base of a diff in a temporary checkout borrows the working tree's cache by content
    datafiles._stored_sample.cache_clear()
    with datafiles.samples_kept_in(cache):
        assert csv_sample(other / "customers.csv", tmp_path / "elsewhere") == want
    # THEN nothing naming the other checkouts' paths is kept (the copy was written a moment ago)
    keep_samples()
    assert not (tmp_path / "elsewhere").exists()
    kept = [json.loads(e.read_text())["key"] for e in (cache / "datafiles").glob("*.json")]
    assert len(kept) == 2 and not any(str(other) in key for key in kept)  # main's by path, and by content


def test_validate_keeps_a_sample_per_data_file(tmp_path: Path) -> None:
    # GIVEN a project whose two datasets read their own CSV
    write_csv(tmp_path / "a.csv")
    write_csv(tmp_path / "b.csv", 80)
    spec = tmp_path / "modelops.yaml"
    spec.write_text("apiVersion: modelops/v1\nproject: shop\nowner: t@example.com\nregion: eu-west-1\n"
                    "datasets:\n  orders: {format: csv, source: a.csv}\n  customers: {format: csv, source: b.csv}\n")
    # WHEN it is validated
    problems, envs = check(spec)
    # THEN each file's sample is kept, and the resolved tables have the files' columns
    assert problems == []
    assert len(list((tmp_path / ".modelops" / "cache" / "datafiles").glob("*.json"))) == 4
    assert dict(next(iter(envs.values())).datasets["customers"].columns)["churned"] == "boolean"


CELLS = ["1", "-2", "+3", "007", "1_000", "1__0", "_1", "2.5", ".5", "5.", "1e5", "1E-3", "1.5e", "inf", "-Infinity",
         "NaN", "nan1", "true", "FALSE", "True ", "yes", "0x10", "", "  ", "abc", "1,5", "٣", "1\n2", "²"]


def test_one_pass_per_column_types_as_one_conversion_per_value_did() -> None:
    # GIVEN columns of cells drawn from every kind of value a CSV holds (and edge cases)
    rng = random.Random(7)
    for _ in range(3000):
        column = [rng.choice(CELLS) for _ in range(rng.randint(0, 6))]
        # WHEN typed in one match per column THEN the type is the one per-value conversions give
        reference = _glue_type({_value_kind(c.strip()) for c in column if c.strip()})
        assert _column_type(column) == reference, column


def test_an_invalid_spec_keeps_nothing(tmp_path: Path) -> None:
    # GIVEN a project reading a CSV, with a mistake elsewhere in the spec
    write_csv(tmp_path / "a.csv")
    spec = tmp_path / "modelops.yaml"
    spec.write_text("apiVersion: modelops/v1\nproject: shop\nowner: t@example.com\nregion: eu-west-1\n"
                    "datasets:\n  orders: {format: csv, source: a.csv}\n"
                    "models:\n  scorer: {dataset: nowhere, artifact: a.csv}\n")
    # WHEN it is validated THEN it is refused, and nothing was written into the project
    problems, _ = check(spec)
    assert problems
    assert not (tmp_path / ".modelops").exists()


def _bytes_read() -> int:
    """Bytes this process has read through read(2) so far (Linux ``/proc/self/io``: ``rchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io to count bytes read")
def test_validate_reads_a_bounded_prefix_of_a_large_data_file(tmp_path: Path) -> None:
    # GIVEN a project with a 40 MB CSV source, validated once before (imports warm)
    spec = tmp_path / "modelops.yaml"
    spec.write_text("apiVersion: modelops/v1\nproject: shop\nowner: t@example.com\nregion: eu-west-1\n"
                    "datasets:\n  customers: {format: csv, source: big.csv}\n")
    write_csv(tmp_path / "big.csv", 50)
    check(spec)
    big = write_csv(tmp_path / "big.csv", 1_100_000)
    size = big.stat().st_size
    assert size > 40_000_000
    # WHEN it is validated in every environment, the resolved datasets included
    before = _bytes_read()
    problems, envs = check(spec)
    read = _bytes_read() - before
    # THEN far less than the file was read: its header and bounded sample, not its digest
    assert problems == []
    assert read < size // 8, f"validate read {read:,} bytes of a {size:,}-byte file"
    # AND the digest a render needs (the content-addressed S3 key) is computed when asked
    dataset = next(iter(envs.values())).datasets["customers"]
    expected = file_digest(big)
    before = _bytes_read()
    assert dataset.source_digest == expected
    assert _bytes_read() - before >= size, "the digest was computed from the whole file"
