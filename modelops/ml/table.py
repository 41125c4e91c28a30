"""Reading a dataset's local source into a small column table (no pandas needed).

CSV (with a header row) and JSON Lines are read with the standard library, parquet with
``pyarrow`` (scalar columns only). Each column is *numeric* when every non-empty
value parses as a number, else *categorical*; numeric values become floats (missing ->
NaN), categorical values strings (missing -> ``""``).

Example::

    table = read_table("examples/churn/data/customers.csv", "csv")
    table.kinds["contract"]    # 'categorical'
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modelops.errors import UsageError

Kind = Literal["numeric", "categorical"]

#: the largest data file ``read_table`` reads (it is held in memory several times over)
MAX_TABLE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Table:
    """Columns in file order, each a 1-D array (float for numeric, object of str otherwise)."""

    columns: tuple[str, ...]
    kinds: dict[str, Kind]
    values: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        return len(self.values[self.columns[0]]) if self.columns else 0

    def matrix(self, columns: list[str] | tuple[str, ...]) -> np.ndarray:
        """A 2-D object array of ``columns`` (floats and strings), the model's input layout."""
        out = np.empty((self.rows, len(columns)), dtype=object)
        for i, name in enumerate(columns):
            out[:, i] = self.values[name]
        return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "") or (
        isinstance(value, float) and math.isnan(value)
    )


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) or math.isnan(number) else None


def from_records(columns: list[str], records: list[list[Any]]) -> Table:
    """Build a table from raw rows (strings or JSON scalars), inferring each column's kind."""
    kinds: dict[str, Kind] = {}
    values: dict[str, np.ndarray] = {}
    for i, name in enumerate(columns):
        raw = [row[i] if i < len(row) else None for row in records]
        present = [v for v in raw if not _is_missing(v)]
        numeric = bool(present) and all(_as_number(v) is not None for v in present)
        if numeric:
            kinds[name] = "numeric"
            values[name] = np.array([math.nan if _is_missing(v) else _as_number(v) for v in raw], dtype=float)
        else:
            kinds[name] = "categorical"
            col = np.empty(len(raw), dtype=object)
            col[:] = ["" if _is_missing(v) else str(v) for v in raw]
            values[name] = col
    return Table(tuple(columns), kinds, values)


def _read_csv(text: str, where: str) -> Table:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError(f"{where}: the CSV file is empty; it needs a header row and data rows") from None
    header = [h.strip() for h in header]
    records = [row for row in reader if row]
    for number, row in enumerate(records, start=2):
        if len(row) != len(header):
            raise UsageError(
                f"{where}:{number}: row has {len(row)} fields, the header has {len(header)}; fix the CSV"
            )
    return from_records(header, records)


def _read_jsonl(text: str, where: str) -> Table:
    columns: list[str] = []
    objects: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}:{number}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise UsageError(f"{where}:{number}: each line must be a JSON object, got {type(obj).__name__}")
        for key in obj:
            if key not in columns:
                columns.append(key)
        objects.append(obj)
    return from_records(columns, [[obj.get(c) for c in columns] for obj in objects])


def _read_parquet(path: Path, where: str) -> Table:
    # imported here: pyarrow takes a good part of a second to import, and only parquet needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{where}: not a readable parquet file ({exc}); write it with a parquet writer, or use csv or jsonl") from None
    nested = [field.name for field in data.schema if pa.types.is_nested(field.type)]
    if nested:
        raise UsageError(
            f"{where}: column(s) {', '.join(nested)} hold lists or structs; a model trains on scalar columns: "
            "flatten them, or leave them out of the file"
        )
    values = [data.column(i).to_pylist() for i in range(data.num_columns)]
    return from_records([str(name) for name in data.column_names], [list(row) for row in zip(*values)])


def read_table(path: str | Path, fmt: str, *, where: str | None = None) -> Table:
    """Read ``path`` as ``fmt`` (``csv``, ``jsonl`` or ``parquet``); ``where`` names it in errors."""
    path = Path(path)
    where = where or str(path)
    if not path.is_file():
        raise UsageError(f"{where}: data file {path} does not exist; create it or fix the dataset's `source`")
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise UsageError(
            f"{where}: the data file is {size:,} bytes, over the {MAX_TABLE_BYTES:,}-byte limit of what "
            "`modelops build` reads into memory; train on a sample of it"
        )
    if fmt == "parquet":
        table = _read_parquet(path, where)
    else:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TABLE_BYTES + 1)  # the file may have grown since stat
        if len(raw) > MAX_TABLE_BYTES:
            raise UsageError(f"{where}: the data file is over the {MAX_TABLE_BYTES:,}-byte limit; train on a sample of it")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{where}: not UTF-8 text (byte {exc.start:,}); save the data as UTF-8") from None
        try:
            table = _read_jsonl(text, where) if fmt == "jsonl" else _read_csv(text, where)
        except csv.Error as exc:  # e.g. a field over csv's 131,072-character limit
            raise UsageError(f"{where}: not a readable CSV file ({exc}); fix the file") from None
    if table.rows == 0:
        raise UsageError(f"{where}: the data has no rows; a model needs data to train on")
    return table
