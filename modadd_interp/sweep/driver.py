"""``sweep``: run every cell of a spec that is not finished yet, and keep the results table up to date.

Re-running the same sweep is resuming it: cells whose newest record succeeded with the same axes and
settings are skipped, and every other cell is run; its trainer resumes the run from its last
checkpoint (bit-identically), so a sweep killed at any point loses at most the steps since each
running cell's last checkpoint. Cells that failed are tried again. A lock file (``DIR/.sweep.lock``)
keeps two sweeps from writing to one directory at once.

Examples:
    >>> import modadd_interp as mi
    >>> table = mi.sweep({"p": 23, "weight_decay": [0.5, 1], "seed": [0, 1], "steps": 300,
    ...                   "d_model": 32, "d_mlp": 128}, "sweeps/wd", executor="serial")  # 4 models  # doctest: +SKIP
    >>> table[["weight_decay", "seed", "status", "label", "test_accuracy"]]           # doctest: +SKIP
       weight_decay  seed status         label  test_accuracy
    0           0.5     0     ok  memorization       0.070081
    1           0.5     1     ok  memorization       0.008086
    2           1.0     0     ok  memorization       0.045822
    3           1.0     1     ok  memorization       0.018868
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ..errors import ModAddError
from ..storage import atomic_write_bytes, exclusive_lock
from .executors import DEFAULT_MAX_RETRIES, make_executor
from .results import SPEC_JSON, Results
from .spec import SweepSpec, as_spec

LOCK_FILE = ".sweep.lock"


class SweepLockedError(ModAddError):
    """Another sweep is writing to the same output directory."""


def sweep(
    spec: SweepSpec | Mapping[str, Any] | str | Path,
    out_dir: str | Path,
    *,
    executor: str = "ray",
    address: str | None = None,
    cpus_per_cell: int = 1,
    num_cpus: int | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    progress: bool = True,
) -> pd.DataFrame:
    """Train and analyze every cell of ``spec`` into ``out_dir``; return the results table.

    Args:
        spec: a :class:`~modadd_interp.sweep.spec.SweepSpec`, a mapping of axes and settings (lists are
            swept), or the path of a TOML spec.
        out_dir: the sweep directory: ``runs/<cell>/`` (one run each), ``results.jsonl``,
            ``results.csv`` and ``sweep.json`` (the spec and the wall time of every invocation).
        executor: ``"ray"`` (a Ray task per cell; local unless ``address``/``RAY_ADDRESS``) or ``"serial"``
            (in this process).
        address: a Ray cluster to join (Ray executor only).
        cpus_per_cell: CPUs and torch threads per cell.
        num_cpus: CPUs of a local Ray (default: all).
        max_retries: Ray retries of a cell whose worker died.
        progress: show a tqdm bar (cells done / running / failed).

    Returns:
        One row per cell of ``spec`` (the columns of ``results.csv``; ``key_frequencies`` as JSON text).
        ``attrs`` holds ``wall_seconds``, ``ran``, ``skipped`` and ``failed`` for this invocation.

    Raises:
        SweepSpecError: the spec is malformed (a cell's own invalid values fail that cell only).
        SweepExecutorError: Ray is missing or unreachable, or an executor option is invalid.
        SweepLockedError: another sweep is writing to ``out_dir``.
    """
    spec = as_spec(spec)
    out_dir = Path(out_dir)
    cells = spec.cells()
    runner = make_executor(executor, address=address, cpus_per_cell=cpus_per_cell, num_cpus=num_cpus,
                           max_retries=max_retries)
    with _sweep_lock(out_dir):
        results = Results(out_dir)
        todo = [cell for cell in cells if not results.is_finished(cell)]
        skipped = len(cells) - len(todo)
        started = time.time()
        counts = {"ok": 0, "failed": 0}
        bar = tqdm(total=len(cells), initial=skipped, disable=not progress, unit="cell", dynamic_ncols=True,
                   desc=f"sweep ({runner.name}{f', {skipped} done before' if skipped else ''})")
        try:
            with contextlib.closing(runner.map(todo, out_dir)) as records:
                for record in records:
                    results.append(record)
                    counts["ok" if record["status"] == "ok" else "failed"] += 1
                    bar.update(1)
                    _show(bar, counts, len(todo), runner.slots)
        finally:
            bar.close()
            wall = time.time() - started
            _log_invocation(out_dir, spec, runner.name, started, wall, len(cells), skipped, counts)
    frame = results.frame(cells)
    frame.attrs.update(wall_seconds=wall, ran=counts["ok"] + counts["failed"], skipped=skipped,
                       failed=counts["failed"])
    return frame


def _show(bar: tqdm, counts: dict[str, int], total: int, slots: int) -> None:
    finished = counts["ok"] + counts["failed"]
    bar.set_postfix(done=counts["ok"], running=min(total - finished, slots), failed=counts["failed"], refresh=True)


def _log_invocation(out_dir: Path, spec: SweepSpec, executor: str, started: float, wall: float, n_cells: int,
                    skipped: int, counts: dict[str, int]) -> None:
    """Record the spec and this invocation's wall time in ``sweep.json``."""
    path = out_dir / SPEC_JSON
    try:
        log = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        log = {}
    invocations = log.get("invocations", []) if isinstance(log, dict) else []
    invocations.append({
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 2), "executor": executor, "cells": n_cells, "skipped": skipped,
        "ran": counts["ok"] + counts["failed"], "failed": counts["failed"],
    })
    payload = {"spec": spec.to_dict(), "swept": list(spec.swept), "invocations": invocations}
    atomic_write_bytes(path, json.dumps(payload, indent=2).encode())


def _sweep_lock(out_dir: Path):
    """Hold ``out_dir/.sweep.lock`` exclusively; the OS releases it if this process dies."""
    return exclusive_lock(out_dir / LOCK_FILE, SweepLockedError(
        f"another sweep is writing to {out_dir}; wait for it, or use another --out."))
