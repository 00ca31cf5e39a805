"""Executors: run a sweep's cells in this process (serial) or as Ray tasks (a local Ray, or a cluster).

Both yield each cell's record (:func:`modadd_interp.sweep.cells.run_cell`) as it finishes and give
every cell the same torch thread count (``cpus_per_cell``), so a cell's run is bit-identical under
either executor (the trainer is deterministic for a given thread count).

**Why Ray Core tasks, not Ray Tune.** A sweep here is a fixed grid with no search algorithm, and it
must not stop runs early: a scheduler such as ASHA would cut exactly the runs that grok late, which
is the phenomenon we map. Each cell already checkpoints and resumes in our own run format, and the
results table is ours. Tune would add a second result store and per-trial working directories under
``/tmp/ray`` for nothing we use, and its extra dependencies (``ray[tune]``). Core tasks give what we
need directly: one task per cell with ``num_cpus`` (Ray sets ``OMP_NUM_THREADS`` to it and we pass it
to ``torch.set_num_threads``), ``max_retries`` for workers that die, and ``ray.wait`` to write each row
as it lands.

Ray is optional: this module imports it only inside :class:`RayExecutor`; without it the error names
the ``sweep`` extra.

Examples:
    >>> executor = make_executor("serial")
    >>> executor.name, executor.slots
    ('serial', 1)
    >>> records = list(executor.map(cells, "sweeps/tiny"))          # trains every cell: not run  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ModAddError
from .cells import env_threads, failed_record, run_cell
from .spec import Cell

#: The Ray version the sweep is tested with (the ``sweep`` extra pins it).
RAY_VERSION = "2.60.0"
#: How often Ray re-runs a cell whose worker died (the cell then resumes from its last checkpoint).
DEFAULT_MAX_RETRIES = 3
EXECUTORS = ("ray", "serial")


class SweepExecutorError(ModAddError):
    """The executor cannot run: Ray is missing, or its cluster cannot be reached."""


def require_ray() -> Any:
    """Import and return ``ray``; a :class:`SweepExecutorError` naming the extra when it is missing."""
    try:
        import ray
    except ImportError:
        raise SweepExecutorError(
            "the Ray executor needs Ray, which is not installed: pip install 'modadd_interp[sweep]' "
            f"(Ray {RAY_VERSION}), or run the cells in this process with --executor serial."
        ) from None
    return ray


class SerialExecutor:
    """Runs the cells one after another in this process, with ``threads`` torch threads each."""

    name = "serial"

    def __init__(self, threads: int = 1) -> None:
        self.threads = _positive_int("threads", threads)
        self.slots = 1

    def map(self, cells: Sequence[Cell], out_dir: str | Path) -> Iterator[dict[str, Any]]:
        """Yield each cell's record in order."""
        for cell in cells:
            yield run_cell(cell, out_dir, threads=self.threads)


class RayExecutor:
    """Runs each cell as a Ray task with ``cpus_per_cell`` CPUs and ``max_retries`` retries.

    Args:
        address: a Ray cluster to join (``"auto"``, ``"HOST:PORT"``); default: ``RAY_ADDRESS`` when it is
            set, else a local Ray started here (no cluster, no set-up) and stopped at the end.
        cpus_per_cell: CPUs (and torch threads) per cell.
        num_cpus: CPUs of the local Ray (default: all of this machine's); ignored when joining a cluster.
        max_retries: how often a cell whose worker died is run again (it resumes from its last checkpoint).

    A Ray already initialized in this process (``ray.init`` in a notebook) is used as it is and left
    running. On a cluster, the output directory must be on a filesystem every node sees at the same path.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_cell: int = 1, num_cpus: int | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.address = address or None
        self.cpus_per_cell = _positive_int("cpus_per_cell", cpus_per_cell)
        self.num_cpus = None if num_cpus is None else _positive_int("num_cpus", num_cpus)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise SweepExecutorError(f"max_retries must be a non-negative integer, got {max_retries!r}.")
        self.max_retries = max_retries
        self.slots = 1
        require_ray()

    def _connect(self, ray: Any) -> bool:
        """Initialize Ray unless it already is; return True when this call started the connection."""
        if ray.is_initialized():
            return False
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        target = self.address or os.environ.get("RAY_ADDRESS")
        try:
            if target:
                ray.init(address=target, **quiet)
            else:
                ray.init(address="local", num_cpus=self.num_cpus, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {target}" if target else "a local Ray"
            raise SweepExecutorError(f"cannot start or join {where}: {e}") from None
        return True

    def map(self, cells: Sequence[Cell], out_dir: str | Path) -> Iterator[dict[str, Any]]:
        """Submit every cell, then yield the records in the order they finish."""
        ray = require_ray()
        out_dir = str(Path(out_dir).resolve())  # workers run elsewhere: never a relative path
        started = self._connect(ray)
        pending: dict[Any, Cell] = {}
        try:
            task = ray.remote(_ray_cell).options(num_cpus=self.cpus_per_cell, max_retries=self.max_retries,
                                                 retry_exceptions=False)
            # cells that fit now (an autoscaling cluster may add nodes for the queued ones)
            self.slots = max(1, int(float(ray.cluster_resources().get("CPU", 0)) // self.cpus_per_cell))
            pending = {task.remote(cell, out_dir, self.cpus_per_cell): cell for cell in cells}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    cell = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        record = failed_record(cell, _lost_message(e, self.max_retries))
                    yield record
        finally:
            for ref in pending:  # interrupted: stop the cells still queued or running
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def _ray_cell(cell: Cell, out_dir: str, cpus: int) -> dict[str, Any]:
    """The Ray task: one cell with the task's CPUs as torch threads (Ray sets ``OMP_NUM_THREADS``)."""
    return run_cell(cell, out_dir, threads=env_threads() or cpus)


def _lost_message(error: Exception, retries: int) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (f"{type(error).__name__}: the Ray worker running this cell was lost (tried {retries + 1} times); "
            f"running the sweep again resumes it from its last checkpoint. Ray said: {first_line}")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepExecutorError(f"{name} must be a positive integer, got {value!r}.")
    return value


def make_executor(kind: str = "ray", *, address: str | None = None, cpus_per_cell: int = 1,
                  num_cpus: int | None = None, max_retries: int = DEFAULT_MAX_RETRIES) -> SerialExecutor | RayExecutor:
    """The executor named ``kind`` (``"ray"`` or ``"serial"``) with these options."""
    if kind == "serial":
        if address:
            raise SweepExecutorError("--address joins a Ray cluster; it does not apply to --executor serial.")
        return SerialExecutor(threads=cpus_per_cell)
    if kind == "ray":
        return RayExecutor(address=address, cpus_per_cell=cpus_per_cell, num_cpus=num_cpus, max_retries=max_retries)
    raise SweepExecutorError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}.")
