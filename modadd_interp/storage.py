"""Safe, atomic file I/O: safetensors with JSON metadata, and refusal of unsafe pickles.

Writes go to a temporary file in the same directory, are fsynced, then renamed over
the target, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError, UnsafeCheckpointError

METADATA_KEY = "modadd_interp"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Atomically write ``tensors`` as safetensors, with ``info`` as JSON in the header."""
    data = st_save(
        {k: v.detach().contiguous() for k, v in tensors.items()},
        metadata={METADATA_KEY: json.dumps(info, sort_keys=True)},
    )
    atomic_write_bytes(Path(path), data)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a safetensors file -> ``(tensors, info)``; ``info`` is ``{}`` without our metadata.

    A JSON sidecar ``<name>.json`` is used when the header carries no metadata of ours.

    Raises:
        CheckpointError: the file is missing, truncated or not safetensors.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}.") from e
    try:
        tensors = st_load(raw)
        info = _header_metadata(raw).get(METADATA_KEY)
    except (SafetensorError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{path} is not a valid safetensors file (truncated or corrupt?): {e}."
        ) from e
    if info is None:
        sidecar = path.with_suffix(".json")
        info = sidecar.read_text() if sidecar.is_file() else "{}"
    try:
        parsed = json.loads(info)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"the metadata of {path} is not valid JSON: {e}.") from e
    if not isinstance(parsed, dict):
        raise CheckpointError(f"the metadata of {path} must be a JSON object.")
    return tensors, parsed


def _header_metadata(raw: bytes) -> dict:
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    return header.get("__metadata__", {}) or {}


def torch_load_safely(path: Path):
    """``torch.load(path, weights_only=True, map_location="cpu")`` with clear errors.

    Raises:
        UnsafeCheckpointError: loading would need arbitrary unpickling; nothing was executed.
        CheckpointError: the file is empty, truncated or not a torch file.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); the checkpoint was not written.")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        message = str(e)
        if "Weights only load failed" in message or "Unsupported global" in message:
            raise UnsafeCheckpointError(
                f"{path} needs arbitrary unpickling to load, which could run code from the file; "
                "it was refused and nothing in it was executed. If you trust its author, re-save "
                "its state dict with torch.save(model.state_dict(), ...) and load that instead."
            ) from None
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {message}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or not a checkpoint?): {e}"
        ) from None
