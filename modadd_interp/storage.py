"""Safe, atomic file I/O: checksummed safetensors with JSON metadata, and refusal of unsafe pickles.

Writes go to a temporary file in the same directory, are fsynced, then renamed over
the target, so a crash leaves either the old file or the new one, never half of one.
Every file :func:`save_tensors` writes carries a SHA-256 of its metadata and tensors,
which :func:`load_tensors` verifies, so a flipped byte is an error, not a silent change.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import pickletools
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError, UnsafeCheckpointError

METADATA_KEY = "modadd_interp"
CHECKSUM_KEY = "modadd_interp.sha256"
_PICKLE_SCAN_BYTES = 16 << 20  # the pickled part of a legacy torch file comes before its tensor data


@contextlib.contextmanager
def exclusive_lock(path: Path, locked: Exception) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created with its directory) for the block; raise ``locked``
    at once if another process holds it. The OS releases the lock if the process dies; off POSIX, no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise locked from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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


def tensors_digest(tensors: dict[str, torch.Tensor], info_json: str) -> str:
    """SHA-256 (hex) of ``info_json`` and every tensor's name, dtype, shape and bytes.

    Examples:
        >>> tensors_digest({"w": torch.zeros(2)}, "{}") == tensors_digest({"w": torch.zeros(2)}, "{}")
        True
    """
    digest = hashlib.sha256(info_json.encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Atomically write ``tensors`` as safetensors, with ``info`` as JSON and a checksum in the header."""
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    info_json = json.dumps(info, sort_keys=True)
    metadata = {METADATA_KEY: info_json, CHECKSUM_KEY: tensors_digest(tensors, info_json)}
    atomic_write_bytes(Path(path), st_save(tensors, metadata=metadata))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a safetensors file -> ``(tensors, info)``; ``info`` is ``{}`` without our metadata.

    A JSON sidecar ``<name>.json`` is used when the header carries no metadata of ours.
    A checksum written by :func:`save_tensors` is verified.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, fails its
            checksum, or its metadata is not a JSON object.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}.") from e
    try:
        tensors = st_load(raw)
        metadata = _header_metadata(raw)
    except Exception as e:  # safetensors raises several types on corrupt input; all mean "unreadable"
        raise CheckpointError(
            f"{path} is not a valid safetensors file (truncated or corrupt?): {e}. "
            "Re-save it, or load an earlier copy."
        ) from e
    info = metadata.get(METADATA_KEY)
    expected = metadata.get(CHECKSUM_KEY)
    if expected is not None and tensors_digest(tensors, info or "") != expected:
        raise CheckpointError(
            f"{path} fails its checksum: its bytes changed after it was written (disk or copy "
            "corruption). Restore it from a backup, or retrain it."
        )
    if info is None:
        info = _read_sidecar(path)
    try:
        parsed = json.loads(info)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"the metadata of {path} is not valid JSON: {e}.") from e
    if not isinstance(parsed, dict):
        raise CheckpointError(f"the metadata of {path} must be a JSON object, got {type(parsed).__name__}.")
    return tensors, parsed


def _header_metadata(raw: bytes) -> dict:
    n = int.from_bytes(raw[:8], "little")
    metadata = json.loads(raw[8 : 8 + n]).get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("__metadata__ is not a JSON object")
    return metadata


def _read_sidecar(path: Path) -> str:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return "{}"
    try:
        return sidecar.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read the metadata sidecar {sidecar}: {e}.") from e


def torch_load_safely(path: Path):
    """``torch.load(path, weights_only=True, map_location="cpu")`` with clear errors.

    Raises:
        UnsafeCheckpointError: loading would need arbitrary unpickling; nothing was executed.
        CheckpointError: the file is missing, empty, truncated or not a torch file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}.") from e
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); the checkpoint was not written.")
    try:
        with warnings.catch_warnings():  # we report a raw pickle ourselves, below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        unsafe = _unsafe_globals(path, str(e))
        if unsafe:
            raise UnsafeCheckpointError(
                f"{path} needs arbitrary unpickling to load (it imports {', '.join(unsafe[:3])}), "
                "which could run code from the file; it was refused and nothing in it was executed. "
                "If you trust its author, re-save its state dict with torch.save(model.state_dict(), ...) "
                "and load that instead."
            ) from None
        if _raw_pickle_protocol(path) >= 4:
            raise CheckpointError(
                f"{path} is a raw pickle (protocol 4+, as pickle.dump writes), which weights-only loading "
                "cannot read; re-save its state dict with torch.save(state_dict, path)."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or not a checkpoint?): "
            f"{_short(str(e))}"
        ) from None
    except Exception as e:  # torch.load raises many types on corrupt input; all mean "unreadable"
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or not a checkpoint?): "
            f"{type(e).__name__}: {_short(str(e))}"
        ) from None


# ------------------------------------------------------------ unsafe pickles
_ALLOWED_NON_TORCH_GLOBALS = {
    "_codecs.encode", "builtins.bytearray", "builtins.complex", "builtins.set",
    "collections.Counter", "collections.OrderedDict",
}
_UNSAFE_MESSAGES = (
    "Unsupported global", "unsupported GLOBAL", "Trying to call reduce", "Can only create new object",
    "Can only build",
)
_STRING_OPS = {
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
}


def _unsafe_globals(path: Path, message: str) -> list[str]:
    """Names of the non-allowlisted globals that make a failed weights-only load unsafe, else ``[]``.

    A zip (the torch format) reports them in the unpickler's message; for a raw pickle the
    complete pickles at the start of the file are parsed (never run) with :mod:`pickletools`,
    so that garbage bytes are reported as corrupt, not as unsafe.
    """
    if zipfile.is_zipfile(path):
        if any(m in message for m in _UNSAFE_MESSAGES):
            name = message.split("GLOBAL ", 1)[1].split()[0] if "GLOBAL " in message else "a global"
            return [name]
        return []
    with open(path, "rb") as f:
        return [g for g in _pickled_globals(f.read(_PICKLE_SCAN_BYTES)) if not _allowed_global(g)]


def _pickled_globals(raw: bytes) -> list[str]:
    """Dotted names of every global imported by the complete pickles at the start of ``raw``."""
    stream, found = io.BytesIO(raw), []
    while stream.tell() < len(raw):
        names, pushed, memo = [], [], {}
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL":
                    module, name = (pushed[-2:] if len(pushed) >= 2 else [None, None])
                    names.append(f"{module}.{name}" if module and name else "an unnamed global")
                elif op.name in ("EXT1", "EXT2", "EXT4"):
                    names.append(f"copyreg extension {arg}")
                if op.name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[arg] = pushed[-1] if pushed else None
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(arg))
                elif op.name in _STRING_OPS:
                    pushed.append(arg)
                elif op.name not in ("FRAME", "PROTO"):
                    pushed.append(None)
        except Exception:  # not (or no longer) a pickle: only complete pickles count
            break
        found += names
    return found


def _raw_pickle_protocol(path: Path) -> int:
    """The protocol of a raw pickle file (``\\x80 <protocol>`` header), else 0."""
    with open(path, "rb") as f:
        head = f.read(2)
    return head[1] if len(head) == 2 and head[0] == 0x80 else 0


def _allowed_global(name: str) -> bool:
    return name.startswith("torch.") or name in _ALLOWED_NON_TORCH_GLOBALS


def _short(message: str, limit: int = 300) -> str:
    """The informative first part of a library error message."""
    message = " ".join(message.split())
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:", 1)[1].split(" Check the documentation")[0].strip()
    return message if len(message) <= limit else message[:limit] + "..."
