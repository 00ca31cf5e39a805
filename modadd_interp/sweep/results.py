"""A sweep's results on disk: ``results.jsonl`` (every record, appended) and ``results.csv`` (the table).

``results.jsonl`` is the log: one JSON object per finished cell (its row, the full analysis, the phases,
its warnings), appended and fsynced as each cell finishes, so a sweep killed at any point keeps every
row that landed. A cell run again appends a newer record; the newest record per cell wins. A last line
cut short by a kill is ignored. ``results.csv`` is the tidy table (one row per cell, the
:data:`~modadd_interp.sweep.cells.ROW_COLUMNS`), rewritten atomically from the log after every row;
list values (``key_frequencies``, ``key_irreps``) are written as JSON (``[1, 5]``, ``["(3,1)", "(2,1,1)"]``).

Examples:
    >>> results = Results("sweeps/wd_frac")          # a finished sweep's directory: not run  # doctest: +SKIP
    >>> results.is_finished(cell)                    # doctest: +SKIP
    >>> read_results("sweeps/wd_frac").groupby("label").size()   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ModAddError
from ..storage import atomic_write_bytes
from .cells import ROW_COLUMNS
from .spec import AXIS_DEFAULTS, SETTINGS, Cell

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
SPEC_JSON = "sweep.json"
#: Columns holding lists, written to the CSV as JSON text (``[1, 5]``, ``["(3,1)", "sign"]``).
LIST_COLUMNS = ("key_frequencies", "key_irreps")
#: Integer columns that may be empty; kept as pandas' nullable Int64 (no ``60.0`` in the CSV).
INT_COLUMNS = ("train_threshold_step", "test_threshold_step", "grok_delay", "final_step", "n_key_frequencies",
               "n_key_irreps", "memorization_end", "circuit_formation_end", "cleanup_end", "resumed_from")


class Results:
    """The results log and table of one sweep directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.jsonl = self.out_dir / RESULTS_JSONL
        self.csv = self.out_dir / RESULTS_CSV
        self.records: dict[str, dict[str, Any]] = read_records(self.jsonl)

    def is_finished(self, cell: Cell) -> bool:
        """True when the newest record of ``cell`` succeeded with exactly this cell's axes and settings."""
        record = self.records.get(cell.name)
        return bool(record) and record.get("status") == "ok" and _same_spec(record.get("cell_spec"), cell)

    def append(self, record: dict[str, Any]) -> None:
        """Add one cell's record: append it to the log (fsynced), then rewrite the CSV table."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
        with open(self.jsonl, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records[record["cell"]] = record
        self.write_csv()

    def write_csv(self) -> None:
        """Rewrite ``results.csv`` from the newest record of every cell (atomically)."""
        atomic_write_bytes(self.csv, table(self.records.values()).to_csv(index=False).encode())

    def frame(self, cells: Iterable[Cell] | None = None) -> pd.DataFrame:
        """The table (one row per cell); with ``cells``, only those cells, in their order."""
        if cells is None:
            return table(self.records.values())
        return table(self.records[c.name] for c in cells if c.name in self.records)


def read_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{cell name: newest record}`` from a ``results.jsonl`` (missing file: empty)."""
    path = Path(path)
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):  # the last line of a sweep killed mid-write
                continue
            raise ModAddError(f"{path}, line {number}, is not valid JSON ({e}); the results log is damaged. "
                              "Remove that line to continue the sweep.") from e
        if isinstance(record, dict) and "cell" in record:
            records[record["cell"]] = record
    return records


def table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The tidy table of records: :data:`ROW_COLUMNS`, one row each (list cells as JSON text)."""
    rows = []
    for record in records:
        row = {column: record.get(column) for column in ROW_COLUMNS}
        for column in LIST_COLUMNS:
            if isinstance(row[column], list):
                row[column] = json.dumps(row[column])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    for column in INT_COLUMNS:  # integers with gaps (failed cells, thresholds never reached) stay integers
        frame[column] = frame[column].astype("Int64")
    return frame


def read_results(out_dir: str | Path) -> pd.DataFrame:
    """The results table of a sweep directory, from its ``results.jsonl`` (``key_frequencies`` and ``key_irreps``
    as lists; empty for a failed cell).

    Raises:
        ModAddError: the directory holds no results.
    """
    path = Path(out_dir) / RESULTS_JSONL
    if not path.exists():
        raise ModAddError(f"{out_dir} holds no sweep results ({RESULTS_JSONL} is missing); run "
                          "`modadd-interp sweep ... --out DIR` first.")
    frame = table(read_records(path).values())
    for column in LIST_COLUMNS:
        frame[column] = [json.loads(k) if isinstance(k, str) else [] for k in frame[column]]
    return frame


def _same_spec(recorded: Any, cell: Cell) -> bool:
    """True when a record's ``cell_spec`` is ``cell``'s; a field the record predates (an axis or setting added
    since, e.g. ``model``) counts as its default, so sweeps written before it resume."""
    if not isinstance(recorded, dict):
        return False
    defaults = {**AXIS_DEFAULTS, **SETTINGS}
    return all(recorded.get(key, defaults.get(key)) == value for key, value in cell.to_dict().items())


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
