"""The run directory: the one module that knows its layout, used by the trainer, the loaders and the runs.

::

    OUT_DIR/
      run.json                                  format "modadd_interp.run/1", task, config, recipe
      checkpoints/step_0000100.safetensors      model.*, optim.* (AdamW state), history.* (losses)
      checkpoints/step_0000200.safetensors
      .lock                                     held while a process trains here

Each checkpoint is a file of ours (:mod:`~modadd_interp.formats.ours`), written atomically with a checksum.
As a format, a run directory reads as its newest readable checkpoint (a corrupt one is skipped with a warning
naming it), or, for a series, as every readable checkpoint with the loss history of the newest.

Examples:
    A tiny run, two checkpoints:

    >>> import tempfile
    >>> import modadd_interp as mi
    >>> config = mi.ModelConfig.paper(7, d_model=16, n_heads=2, d_head=8, d_mlp=32)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     run_dir = mi.train(mi.ModularTask(p=7), tmp, config, progress=False, steps=2, checkpoint_every=1)
    ...     print(is_run_dir(run_dir), [(step, path.name) for step, path in checkpoint_paths(run_dir)])
    True [(1, 'step_0000001.safetensors'), (2, 'step_0000002.safetensors')]
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..storage import atomic_write_bytes, exclusive_lock, load_tensors, save_tensors
from . import ours
from .checkpoint import Checkpoint, Series
from .registry import ReadOptions
from .source import Source

NAME = "run_directory"
RUN_FORMAT = "modadd_interp.run/1"
RUN_INFO = "run.json"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
CKPT_RE = re.compile(r"^step_(\d+)\.safetensors$")
_TEMP_GLOB = ".step_*.safetensors.*.tmp"


# ------------------------------------------------------------------ the layout
def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives: ``checkpoints/step_{step:07d}.safetensors``."""
    return Path(run_dir) / CHECKPOINTS / f"step_{step:07d}.safetensors"


def checkpoint_paths(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``[(step, path)]`` of a run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = CKPT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def is_run_dir(path: str | Path) -> bool:
    """A directory with a ``run.json`` (which :func:`read_run_info` then checks)."""
    return Path(path).is_dir() and (Path(path) / RUN_INFO).exists()


def read_run_info(run_dir: str | Path) -> dict:
    """The parsed ``run.json`` of a run directory.

    Raises:
        CheckpointError: missing, not JSON, not a run of ours, or lacking ``task``/``config``/``recipe``.
    """
    path = Path(run_dir) / RUN_INFO
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is missing or not valid JSON: {e}") from e
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise CheckpointError(f"{path} is not a modadd_interp run (format {found!r}, expected {RUN_FORMAT!r}).")
    missing = sorted({"task", "config", "recipe"} - set(info))
    if missing:
        raise CheckpointError(f"{path} lacks the entries {missing}; it is damaged. Start a new run.")
    return info


def write_run_info(run_dir: str | Path, info: dict) -> None:
    """Write ``run.json`` atomically (indented, keys sorted)."""
    atomic_write_bytes(Path(run_dir) / RUN_INFO, json.dumps(info, indent=2, sort_keys=True).encode())


def write_checkpoint(run_dir: str | Path, step: int, tensors: dict[str, torch.Tensor], info: dict) -> Path:
    """Write the checkpoint of ``step`` atomically with its checksum; return its path."""
    path = checkpoint_path(run_dir, step)
    save_tensors(path, tensors, info)
    return path


def latest_checkpoint(run_dir: str | Path) -> tuple[int, dict[str, torch.Tensor], dict] | None:
    """The newest readable checkpoint as ``(step, tensors, info)``, or None when there is none.

    Unreadable checkpoints are skipped with a warning naming them.
    """
    for step, path in reversed(checkpoint_paths(run_dir)):
        try:
            tensors, info = load_tensors(path)
        except CheckpointError as e:
            warnings.warn(f"skipping corrupt checkpoint {path.name}: {e}", stacklevel=2)
            continue
        return step, tensors, info
    return None


def lock(run_dir: str | Path, locked: Exception) -> contextlib.AbstractContextManager:
    """Hold an exclusive lock on ``run_dir/.lock`` for the block; raise ``locked`` at once if another process holds
    it (the OS releases the lock if the process dies)."""
    return exclusive_lock(Path(run_dir) / LOCK, locked)


def stale_temp_files(run_dir: str | Path) -> Iterator[Path]:
    """Half-written checkpoint temp files a killed trainer left (remove them only while holding :func:`lock`)."""
    return (Path(run_dir) / CHECKPOINTS).glob(_TEMP_GLOB)


# ------------------------------------------------------------------ the format
def sniff(src: Source) -> bool:
    """A directory with a ``run.json``."""
    return src.is_dir and is_run_dir(src.path)


def read(src: Source, options: ReadOptions) -> Checkpoint | Series:
    """The newest readable checkpoint, or every readable one with ``options.series``.

    Raises:
        CheckpointError: ``run.json`` is not a run of ours, there are no checkpoints, or none is readable.
    """
    path = src.path
    info = read_run_info(path)
    found = checkpoint_paths(path)
    if not found:
        raise CheckpointError(
            f"the run {path} has no checkpoints yet (checkpoints/ is empty); train it first."
        )
    if not options.series:
        latest = latest_checkpoint(path)
        if latest is None:
            raise _all_unreadable(path)
        step, tensors, ckpt_info = latest
        return _checkpoint(info, step, tensors, ckpt_info)
    checkpoints, history = [], None
    for step, file in found:
        try:
            tensors, ckpt_info = load_tensors(file)
        except CheckpointError as e:
            warnings.warn(f"skipping corrupt checkpoint {file.name}: {e}", stacklevel=4)
            continue
        checkpoints.append(_checkpoint(info, step, tensors, ckpt_info))
        history = {k[8:]: v for k, v in tensors.items() if k.startswith("history.")} or history
    if not checkpoints:
        raise _all_unreadable(path)
    return Series(tuple(checkpoints), history)


def _checkpoint(run_info: dict, step: int, tensors: dict[str, torch.Tensor], ckpt_info: dict) -> Checkpoint:
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    return ours.from_tensors(weights, {**run_info, **ckpt_info, "step": step})


def _all_unreadable(path: Path) -> CheckpointError:
    return CheckpointError(
        f"every checkpoint of the run {path} is unreadable; retrain, or restore checkpoints/ from a backup."
    )
