"""One cell of a sweep: train (or resume) its run, analyze it, and return its row of the results table.

:func:`run_cell` never raises for the cell's own failures: an invalid configuration, a training or
an analysis error is caught and returned as a row with ``status="failed"`` and the error's type and
message (no traceback). The row's columns are :data:`ROW_COLUMNS`; the record :func:`run_cell` returns
also carries the full ``analyze`` dict, the phases and their checks, and the warnings the cell raised.

Examples:
    >>> from modadd_interp.sweep import SweepSpec
    >>> cell = SweepSpec.from_dict({"p": 7, "steps": 50, "d_model": 16, "d_mlp": 32}).cells()[0]
    >>> record = run_cell(cell, "sweeps/tiny")                # trains and analyzes: not run  # doctest: +SKIP
    >>> record["status"], record["label"], record["key_frequencies"]   # doctest: +SKIP
    ('ok', 'confusion', [])
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ..analysis import analyze
from ..config import ModelConfig
from ..errors import ArchitectureError
from ..loading import load
from ..progress import progress_measures
from ..runs import load_run
from ..task import ModularTask
from ..train import latest_checkpoint, train
from .curves import accuracy_frame
from .labels import label_run
from .spec import AXES, Cell

#: The flat columns of ``results.csv``, in order (``results.jsonl`` holds these and the full analysis).
ROW_COLUMNS: tuple[str, ...] = (
    "cell", "status", "error", *AXES,
    "label", "train_threshold_step", "test_threshold_step", "grok_delay",
    "final_step", "train_accuracy", "test_accuracy", "train_loss", "test_loss", "accuracy",
    "key_frequencies", "n_key_frequencies", "key_irreps", "n_key_irreps", "algorithm", "circuit_confirmed",
    "loss_recovered_clock", "loss_recovered_pizza", "verdict",
    "memorization_end", "circuit_formation_end", "cleanup_end", "grokked",
    "gradient_symmetricity", "distance_irrelevance", "circularity", "llc_final",
    "resumed_from", "train_seconds", "analysis_seconds", "run_dir",
)
#: Name of the runs folder inside a sweep's output directory.
RUNS_DIR = "runs"


def cell_task(cell: Cell) -> ModularTask:
    """The cell's task: ``seed`` seeds the paper split."""
    return ModularTask(p=cell.p, op=cell.op, frac_train=cell.frac_train, seed=cell.seed, split="paper")


def cell_config(cell: Cell) -> ModelConfig:
    """The cell's architecture: the paper's, with the cell's widths, depth and attention rate; or, for
    ``model="mlp"``, Chughtai et al.'s one-hidden-layer MLP with the cell's ``d_embed`` and ``d_mlp``."""
    if cell.model == "mlp":
        return ModelConfig.mlp(cell.p, d_embed=cell.d_embed, d_mlp=cell.d_mlp, act_fn=cell.act_fn)
    if cell.d_model % cell.n_heads:
        raise ArchitectureError(f"n_heads={cell.n_heads} does not divide d_model={cell.d_model}.")
    return ModelConfig.paper(cell.p, n_layers=cell.n_layers, d_model=cell.d_model, n_heads=cell.n_heads,
                             d_head=cell.d_model // cell.n_heads, d_mlp=cell.d_mlp, act_fn=cell.act_fn,
                             attn_rate=cell.attn_rate)


def cell_recipe(cell: Cell) -> dict[str, Any]:
    """The cell's :class:`~modadd_interp.train.Recipe` fields: ``seed`` is also the init seed."""
    return {"steps": cell.steps, "lr": cell.lr, "weight_decay": cell.weight_decay, "init_seed": cell.seed,
            "checkpoint_every": cell.checkpoint_every, "eval_every": cell.eval_every,
            "warmup_steps": cell.warmup_steps}


def run_cell(cell: Cell, out_dir: str | Path, threads: int | None = None) -> dict[str, Any]:
    """Train, analyze and label one cell; return its record (a row plus the full analysis).

    Args:
        cell: the cell.
        out_dir: the sweep's directory; the run goes to ``out_dir/runs/<cell.name>/`` and is resumed
            from its last checkpoint when it exists.
        threads: torch threads for this cell; default: ``OMP_NUM_THREADS`` when set (Ray sets it to the
            task's CPUs), else torch's current setting. Restored afterwards.

    Returns:
        A JSON-safe dict with every key of :data:`ROW_COLUMNS` plus ``"cell_spec"`` (the cell's fields),
        ``"analysis"`` (``mi.analyze``'s dict), ``"phases"``, ``"phase_checks"``, ``"warnings"``, ``"threads"``
        (the torch threads it ran with) and ``"omp_num_threads"`` (the environment's, as Ray set it).
        On failure ``status`` is ``"failed"``, ``error`` is ``"<Type>: <message>"`` and the measured
        columns are None.
    """
    run_dir = Path(out_dir) / RUNS_DIR / cell.name
    record = failed_record(cell, "")
    wanted = threads or env_threads() or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(wanted)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record.update(_train_and_measure(cell, run_dir))
        record.update(status="ok", error=None)
    except Exception as e:  # noqa: BLE001 - a cell's failure is data: recorded in its row, never raised
        record["error"] = f"{type(e).__name__}: {e}"
    finally:
        torch.set_num_threads(previous)
    record["warnings"] = sorted({str(w.message) for w in caught})
    record["threads"] = wanted
    record["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    return record


def failed_record(cell: Cell, error: str) -> dict[str, Any]:
    """The record of a cell that failed with ``error`` (``"<Type>: <message>"``): its axes, no measures."""
    record: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    record.update(cell=cell.name, status="failed", error=error, **cell.axes(), run_dir=f"{RUNS_DIR}/{cell.name}",
                  cell_spec=cell.to_dict(), warnings=[])
    return record


def env_threads() -> int | None:
    """``OMP_NUM_THREADS`` as a positive int (Ray sets it to a task's CPUs), else None."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def _train_and_measure(cell: Cell, run_dir: Path) -> dict[str, Any]:
    task, config, recipe = cell_task(cell), cell_config(cell), cell_recipe(cell)
    before = latest_checkpoint(run_dir) if (run_dir / "run.json").exists() else None
    start = time.perf_counter()
    train(task, run_dir, config=config, progress=False, **recipe)
    trained = time.perf_counter()
    model, task = load(run_dir)
    analysis = analyze(model, task)
    cyclic = "key_frequency_detection" in analysis  # Z/p: the Fourier progress measures apply
    run = load_run(run_dir)
    frame = progress_measures(run, progress=False, llc=cell.llc) if cyclic else accuracy_frame(run)
    done = time.perf_counter()
    phases = frame.attrs.get("phases", {})
    recovered = analysis.get("loss_recovered") or {}
    row = {
        **label_run(frame, cell.steps),
        "final_step": int(frame["step"].iloc[-1]),
        **{key: _number(analysis.get(key)) for key in
           ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "accuracy",
            "gradient_symmetricity", "distance_irrelevance", "circularity")},
        "key_frequencies": [int(k) for k in analysis["key_frequencies"]],
        "n_key_frequencies": len(analysis["key_frequencies"]),
        "key_irreps": [str(r["name"]) for r in analysis["key_irreps"]],
        "n_key_irreps": len(analysis["key_irreps"]),
        "algorithm": analysis["algorithm"],
        "circuit_confirmed": bool(analysis["circuit_confirmed"]),
        "loss_recovered_clock": _worst(recovered.get("clock")),
        "loss_recovered_pizza": _worst(recovered.get("pizza")),
        "verdict": analysis["verdict"]["line"],
        **{key: phases.get(key) for key in ("memorization_end", "circuit_formation_end", "cleanup_end", "grokked")},
        "llc_final": _number(frame["llc_mean"].iloc[-1]) if "llc_mean" in frame else None,
        "resumed_from": before[0] if before is not None else 0,
        "train_seconds": round(trained - start, 3),
        "analysis_seconds": round(done - trained, 3),
    }
    return {**row, "analysis": analysis, "phases": phases, "phase_checks": frame.attrs.get("phase_checks", {})}


def _number(value: Any) -> float | None:
    """A finite float, or None (NaN and missing values)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _worst(shares: dict[str, float] | None) -> float | None:
    """A hypothesis's loss recovered in its weakest causal test (logits, MLP output, resampling)."""
    if not shares:
        return None
    values = [v for v in (_number(x) for x in shares.values()) if v is not None]
    return min(values) if values else None
