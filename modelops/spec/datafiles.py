"""The data files a spec names: confined to the project, read in bounded prefixes.

A spec names local files (a dataset's ``source``, a model's ``artifact``); validation reads
only what it needs of them (a CSV header and a sample of rows, a parquet footer), once per
file per process, and never more than the limits below.

Example::

    path, reason = project_file(Path("."), "examples/churn/data/customers.csv")
    csv_sample(path).columns   # (("customer_id", "bigint"), ...)
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import functools
import hashlib
import io
import itertools
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from modelops.files import atomic_write


__all__ = ["CSV_TYPE_SAMPLE_ROWS", "MAX_HEADER_BYTES", "MAX_PARQUET_FOOTER_BYTES", "MAX_SAMPLE_BYTES", "CsvSample",
           "csv_sample", "forget_samples", "keep_samples", "parquet_columns", "samples_kept_in", "parquet_problem", "project_file", "resolved_path"]


#: the largest parquet footer (the file's metadata, schema included) read: a footer that
#: claims more is refused before it is read
MAX_PARQUET_FOOTER_BYTES = 16 * 1024 * 1024


def _parquet_schema(file: Path):  # -> pyarrow.Schema | str (why it cannot be read)
    # imported here: pyarrow takes a good part of a second to import, and only parquet needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open(file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8))
            tail = handle.read(8)
    except OSError as exc:
        return exc.strerror or str(exc)
    if len(tail) == 8 and tail[4:] == b"PAR1" and int.from_bytes(tail[:4], "little") > MAX_PARQUET_FOOTER_BYTES:
        return f"its metadata is larger than {MAX_PARQUET_FOOTER_BYTES:,} bytes (the limit)"
    try:
        return pq.read_schema(file)
    except (pa.ArrowException, OSError) as exc:
        # "Could not open Parquet input source '<path>': Parquet magic bytes not found in footer. Either ..."
        return str(exc).split("': ", 1)[-1].split(". ")[0].rstrip(".")


def parquet_problem(file: Path) -> str | None:
    """Why ``file`` is not a readable parquet file, or None; reads only its footer (metadata)."""
    schema = _parquet_schema(file)
    return schema if isinstance(schema, str) else None


def parquet_columns(file: Path) -> list[tuple[str, str]]:
    """The columns of a parquet file with their Glue types, from its footer alone.

    Example: ``parquet_columns(path)  # [("customer_id", "bigint"), ("plan", "string"), ...]``
    """
    schema = _parquet_schema(file)
    if isinstance(schema, str):
        return []  # validate reports it (parquet_problem)
    return [(field.name, _arrow_glue_type(field.type)) for field in schema]


def _arrow_glue_type(kind) -> str:
    import pyarrow.types as t

    if t.is_dictionary(kind):
        return _arrow_glue_type(kind.value_type)
    simple = [(t.is_boolean, "boolean"), (t.is_int8, "tinyint"), (t.is_int16, "smallint"), (t.is_int32, "int"),
              (t.is_int64, "bigint"), (t.is_uint8, "smallint"), (t.is_uint16, "int"), (t.is_uint32, "bigint"),
              (t.is_uint64, "decimal(20,0)"), (t.is_float16, "float"), (t.is_float32, "float"),
              (t.is_float64, "double"), (t.is_date, "date"), (t.is_timestamp, "timestamp"),
              (t.is_binary, "binary"), (t.is_large_binary, "binary"), (t.is_fixed_size_binary, "binary")]
    for test, glue in simple:
        if test(kind):
            return glue
    if t.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        return f"array<{_arrow_glue_type(kind.value_type)}>"
    if t.is_map(kind):
        return f"map<{_arrow_glue_type(kind.key_type)},{_arrow_glue_type(kind.item_type)}>"
    if t.is_struct(kind):
        return "struct<" + ",".join(f"{kind.field(i).name}:{_arrow_glue_type(kind.field(i).type)}"
                                    for i in range(kind.num_fields)) + ">"
    return "string"  # strings, and what Glue has no type for (null, time, duration)


def project_file(spec_dir: Path, relative: str) -> tuple[Path | None, str]:
    """A file the spec names (``source``, ``artifact``): its resolved path, or why it cannot be used.

    The file must lie in the project (the spec's directory, after symlinks) and be a regular
    file: a spec under review must not make validate, build or up read ``/etc/shadow``,
    ``/proc/self/environ`` or a device. Returns ``(path, "")`` or ``(None, reason)`` with
    reason one of ``missing``, ``absolute``, ``outside``, ``not-a-file``.

    Example::

        project_file(Path("."), "examples/churn/data/customers.csv")   # (PosixPath('/…/customers.csv'), '')
        project_file(Path("."), "../../etc/passwd")                    # (None, 'outside')
    """
    if os.path.isabs(relative):
        return None, "absolute"
    try:
        root = resolved_path(str(spec_dir))
        path = resolved_path(str(spec_dir / relative))
        if not path.is_relative_to(root):
            return None, "outside"
        info = path.stat()
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError, RuntimeError):  # unreadable, NUL in the name, a symlink loop
        return None, "missing"
    if not stat.S_ISREG(info.st_mode):
        return None, "not-a-file"
    return path, ""


@functools.lru_cache(maxsize=8192)
def resolved_path(path: str) -> Path:
    """``Path(path).resolve()``, memoised: a large spec names the same package file for
    hundreds of models, and each resolve walks the path with a system call per component."""
    return Path(path).resolve()


#: bytes of a CSV source validate reads at most for its header line, and in all (header and
#: sample rows): sources can be large, and are read by validate on every pull request
MAX_HEADER_BYTES = 64 * 1024
MAX_SAMPLE_BYTES = 1024 * 1024
#: rows read to type the columns of a CSV source
CSV_TYPE_SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class CsvSample:
    """What validate and resolution need of a CSV source, from a bounded prefix of it.

    ``header`` is the stripped header row (empty when unreadable), ``columns`` the header
    with Glue types inferred from the sampled rows, ``problem`` the limit hit ("" if none).
    """

    header: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    problem: str = ""


#: a file changed less than this long ago is not kept across runs: a write within the
#: clock's granularity could leave size and time as they were (git's "racy" entries)
_SETTLED_NS = 2_000_000_000


def csv_sample(file: Path, cache_dir: Path | None = None) -> CsvSample:
    """The :class:`CsvSample` of ``file``, read once per process while the file is unchanged,
    and with ``cache_dir`` (``.modelops/cache``) kept across runs under
    ``cache_dir/datafiles/`` (written by :func:`keep_samples` once the spec validated):

    * by the file's path, size, modification time and inode, as git keeps its index: the
      next run does not read an unchanged file at all;
    * by the digest of the bounded prefix a sample is taken from: a fresh checkout of the
      same files (a CI runner, the base of a diff, whose times and inodes are new) reads
      each prefix but does not type it again.

    An entry is data (JSON); one that does not read back as a sample is a miss. Inside
    :func:`samples_kept_in` the cache directory is that one's."""
    try:
        info = os.stat(file)
    except OSError:
        return CsvSample((), ())
    stat_key = (str(file), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    borrowed = _BORROWED.get()
    if borrowed is not None:
        return _stored_sample(stat_key, borrowed, False)
    if cache_dir is None:
        return _csv_sample(*stat_key)
    return _stored_sample(stat_key, str(cache_dir), True)


#: the cache directory of another checkout, read and written by content only (see samples_kept_in)
_BORROWED: contextvars.ContextVar[str | None] = contextvars.ContextVar("modelops_borrowed_samples", default=None)


@contextlib.contextmanager
def samples_kept_in(cache_dir: Path):
    """Within: every CSV sample is read from and kept in ``cache_dir`` by content only.

    For a spec in a temporary checkout (the base of a diff): its unchanged files are the
    working tree's, already sampled; entries naming its temporary paths would never be read.
    """
    token = _BORROWED.set(str(cache_dir))
    try:
        yield
    finally:
        _BORROWED.reset(token)


def _entry_path(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, "datafiles", hashlib.sha256(key.encode()).hexdigest() + ".json")


def _read_entry(cache_dir: str, key: str) -> CsvSample | None:
    try:
        with open(_entry_path(cache_dir, key), "rb") as handle:
            data = json.loads(handle.read(MAX_SAMPLE_BYTES))
        if data["key"] != key:
            return None
        sample = CsvSample(tuple(str(c) for c in data["header"]),
                           tuple((str(c), str(t)) for c, t in data["columns"]), str(data["problem"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not kept yet, or not an entry: a miss
    return sample if all(t in _GLUE_TYPES for _, t in sample.columns) else None


def _keep(cache_dir: str, key: str, sample: CsvSample) -> None:
    _PENDING[_entry_path(cache_dir, key)] = json.dumps({"key": key, "header": sample.header, "columns": sample.columns,
                                                        "problem": sample.problem})


@functools.lru_cache(maxsize=1024)
def _stored_sample(stat_key: tuple[str, int, int, int, int], cache_dir: str, by_stat: bool) -> CsvSample:
    version = ["csv-sample/v2", CSV_TYPE_SAMPLE_ROWS, MAX_SAMPLE_BYTES, MAX_HEADER_BYTES]
    file_key = json.dumps([*version, *stat_key])
    settled = time.time_ns() - stat_key[-1] > _SETTLED_NS
    if by_stat:
        sample = _read_entry(cache_dir, file_key)
        if sample is not None:
            return sample
    prefix = _prefix(stat_key[0])
    if prefix is None:
        return CsvSample((), ())
    size = stat_key[3]
    content_key = json.dumps([*version, hashlib.sha256(prefix).hexdigest(), len(prefix) < size, size > MAX_HEADER_BYTES])
    sample = _read_entry(cache_dir, content_key)
    if sample is None:
        sample = _sample_of(prefix, size)
        _keep(cache_dir, content_key, sample)
    if by_stat and settled:
        _keep(cache_dir, file_key, sample)
    return sample


#: samples taken and not kept yet (entry path → JSON): kept by :func:`keep_samples`
_PENDING: dict[str, str] = {}


def keep_samples() -> int:
    """Write the samples taken since the last call to the cache; the number written.

    Called once a spec has validated: an invalid spec leaves nothing on disk."""
    written = 0
    while _PENDING:
        entry, text = _PENDING.popitem()
        with contextlib.suppress(OSError):  # the cache only saves time: an unwritable one costs it
            atomic_write(entry, text, durable=False)
            written += 1
    return written


def forget_samples() -> None:
    """Drop the samples taken and not kept (the spec did not validate)."""
    _PENDING.clear()


@functools.lru_cache(maxsize=1024)
def _csv_sample(path: str, device: int, inode: int, size: int, mtime_ns: int) -> CsvSample:
    # keyed by the file as stat'ed: one data file named by every environment (and by many
    # datasets) is read once, and a changed file is read again
    prefix = _prefix(path)
    return CsvSample((), ()) if prefix is None else _sample_of(prefix, size)


def _prefix(path: str) -> bytes | None:
    """The bounded prefix of a data file a sample is taken from (None: unreadable)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_SAMPLE_BYTES)
    except OSError:
        return None


def _sample_of(prefix: bytes, size: int) -> CsvSample:
    """The sample of a CSV file of ``size`` bytes from its first :data:`MAX_SAMPLE_BYTES`."""
    first_break = prefix.find(b"\n", 0, MAX_HEADER_BYTES)
    if first_break < 0 and size > MAX_HEADER_BYTES:
        return CsvSample((), (), f"no line break in its first {MAX_HEADER_BYTES:,} bytes: the header line is over the "
                                 f"{MAX_HEADER_BYTES:,}-byte limit validate reads")
    if len(prefix) < size:
        prefix = prefix[: prefix.rfind(b"\n") + 1]  # whole lines only: the last one was cut
    try:
        text = prefix.decode("utf-8-sig")
    except UnicodeDecodeError:
        return CsvSample((), ())
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = tuple(column.strip() for column in next(reader, []))
    except csv.Error:
        return CsvSample((), ())
    try:
        rows = list(itertools.islice(reader, CSV_TYPE_SAMPLE_ROWS))
    except csv.Error:
        return CsvSample(header, tuple((column, "string") for column in header))
    values: list[list[str]] = [[] for _ in header]
    width = len(header)
    for row in rows:
        for index, value in enumerate(row[:width]):
            values[index].append(value)
    return CsvSample(header, tuple((column, _column_type(found)) for column, found in zip(header, values)))


_DIGITS = r"\d(?:_?\d)*"
#: what ``int()`` and ``float()`` accept (stripped), one value per line: a column is typed
#: by one match over its values, not a conversion per value
_INTS = re.compile(rf"(?:[+-]?{_DIGITS}\n)*")
_FLOATS = re.compile(rf"(?:[+-]?(?:(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"
                     rf"|inf(?:inity)?|nan)\n)*", re.IGNORECASE)
_BOOLEANS = re.compile(r"(?:(?:true|false)\n)*", re.IGNORECASE)


def _column_type(cells: list[str]) -> str:
    """The Glue type of a column from its sampled cells (empty ones do not count)."""
    present = [cell.strip() for cell in cells]
    present = [cell for cell in present if cell]
    if not present:
        return "string"
    text = "\n".join(present) + "\n"
    if text.count("\n") != len(present):  # a quoted cell holding a line break: one value at a time
        return _glue_type({_value_kind(cell) for cell in present})
    if _INTS.fullmatch(text):
        return "bigint"
    if _FLOATS.fullmatch(text):
        return "double"
    if _BOOLEANS.fullmatch(text):
        return "boolean"
    return "string"


def _value_kind(value: str) -> str:
    if value.lower() in ("true", "false"):
        return "boolean"
    try:
        int(value)
        return "bigint"
    except ValueError:
        pass
    try:
        float(value)
        return "double"
    except ValueError:
        return "string"


_GLUE_TYPES = ("bigint", "double", "boolean", "string")


def _glue_type(kinds: set[str]) -> str:
    if kinds == {"bigint"}:
        return "bigint"
    if kinds and kinds <= {"bigint", "double"}:
        return "double"
    if kinds == {"boolean"}:
        return "boolean"
    return "string"
