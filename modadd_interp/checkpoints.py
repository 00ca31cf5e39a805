"""Recognise every supported checkpoint format and convert it to canonical weights.

Formats (see docs/formats.md):
    1. ours: safetensors with canonical keys (optionally under ``model.``) and our JSON
       metadata (architecture + task) in the header, or a run directory from :func:`train`;
    2. the progress-measures paper: ``embed.W_E`` is ``[d_model, d_vocab]``, bare, under
       ``"model"``, or a series under ``"state_dicts"``;
    3. a TransformerLens <= 3 ``HookedTransformer.state_dict()``;
    4. a TransformerLens 4 ``TransformerBridge`` (``boot_native``) state dict;
    5. the Clock-and-Pizza format: ``model_<id>.pt`` (the paper's layout) with ``config_<id>.json``
       beside it (:mod:`modadd_interp.pizza_format`).

Torch files load only with ``weights_only=True``; anything that needs arbitrary
unpickling is refused before any of it runs. Every failure is a
:class:`~modadd_interp.errors.ModAddError` whose message names the problem.

Examples:
    >>> ckpt = read_checkpoint("model.safetensors")  # doctest: +SKIP
    >>> ckpt.config.d_model, ckpt.task
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from . import pizza_format, tl_adapter
from .config import ModelConfig, check_weights
from .errors import ArchitectureError, CheckpointError, InvalidWeightsError, ModAddError, TaskMismatchError
from .storage import load_tensors, torch_load_safely
from .task import ModularTask
from .train import checkpoint_paths, latest_checkpoint, read_run_info

DEFAULT_N_HEADS = 4  # the paper's architecture; a bridge state dict does not record it
_LAYERNORM_KEY = re.compile(r"(^|\.)(ln\d+|ln_final)\.")

# Each format's weights, as dimension names per axis. "{b}" is a block ("blocks.0");
# "a*b" is the product of two dimensions already seen. Shapes are checked against these
# tables before any conversion, so a malformed tensor is named instead of crashing a reshape.
_PAPER_LAYOUT = {
    "embed.W_E": ("d_model", "d_vocab"),
    "pos_embed.W_pos": ("n_ctx", "d_model"),
    "{b}.attn.W_Q": ("n_heads", "d_head", "d_model"),
    "{b}.attn.W_K": ("n_heads", "d_head", "d_model"),
    "{b}.attn.W_V": ("n_heads", "d_head", "d_model"),
    "{b}.attn.W_O": ("d_model", "n_heads*d_head"),
    "{b}.mlp.W_in": ("d_mlp", "d_model"),
    "{b}.mlp.b_in": ("d_mlp",),
    "{b}.mlp.W_out": ("d_model", "d_mlp"),
    "{b}.mlp.b_out": ("d_model",),
    "unembed.W_U": ("d_model", "d_vocab_out"),
}
_HOOKED_LAYOUT = {
    "embed.W_E": ("d_vocab", "d_model"),
    "pos_embed.W_pos": ("n_ctx", "d_model"),
    "{b}.attn.W_Q": ("n_heads", "d_model", "d_head"),
    "{b}.attn.W_K": ("n_heads", "d_model", "d_head"),
    "{b}.attn.W_V": ("n_heads", "d_model", "d_head"),
    "{b}.attn.W_O": ("n_heads", "d_head", "d_model"),
    "{b}.attn.b_Q": ("n_heads", "d_head"),
    "{b}.attn.b_K": ("n_heads", "d_head"),
    "{b}.attn.b_V": ("n_heads", "d_head"),
    "{b}.attn.b_O": ("d_model",),
    "{b}.mlp.W_in": ("d_model", "d_mlp"),
    "{b}.mlp.b_in": ("d_mlp",),
    "{b}.mlp.W_out": ("d_mlp", "d_model"),
    "{b}.mlp.b_out": ("d_model",),
    "unembed.W_U": ("d_model", "d_vocab_out"),
    "unembed.b_U": ("d_vocab_out",),
}
_BRIDGE_LAYOUT = {
    "embed.weight": ("d_vocab", "d_model"),
    "pos_embed.weight": ("n_ctx", "d_model"),
    **{f"{{b}}.attn.{x}.weight": ("n_heads*d_head", "d_model") for x in "qkv"},
    **{f"{{b}}.attn.{x}.bias": ("n_heads*d_head",) for x in "qkv"},
    "{b}.attn.o.weight": ("d_model", "n_heads*d_head"),
    "{b}.attn.o.bias": ("d_model",),
    "{b}.mlp.in.weight": ("d_mlp", "d_model"),
    "{b}.mlp.in.bias": ("d_mlp",),
    "{b}.mlp.out.weight": ("d_model", "d_mlp"),
    "{b}.mlp.out.bias": ("d_model",),
    "unembed.weight": ("d_vocab_out", "d_model"),
    "unembed.bias": ("d_vocab_out",),
}


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One model's weights as read from a file.

    Attributes:
        config: the architecture.
        weights: canonical weights (see :mod:`modadd_interp.config`).
        task: the task and split when the file records them, else None (a task with
            ``split="unknown"`` when it records the operation but not the split).
        step: the training step when known.
        format: ``"modadd_interp"``, ``"paper"``, ``"hooked_transformer"``, ``"bridge"`` or
            ``"clock_and_pizza"``.
        notes: what the reader had to assume or could not read, for the user.
        recorded_train_loss: the final training loss the file's own training loop recorded, if any
            (used to recognise the split; see :func:`modadd_interp.inference.infer_split`).
    """

    config: ModelConfig
    weights: dict[str, torch.Tensor]
    task: ModularTask | None
    step: int | None
    format: str
    notes: tuple[str, ...] = ()
    recorded_train_loss: float | None = None


def read_checkpoint(source: str | Path, n_heads: int | None = None) -> Checkpoint:
    """Read the final model of any supported file or run directory.

    Args:
        source: a ``.safetensors`` or torch file, or a run directory from :func:`train`.
        n_heads: the head count, needed only for a bare bridge state dict (default 4);
            for other formats, a mismatch with the file raises.

    Raises:
        CheckpointError: the path is missing, empty, truncated or not a checkpoint.
        UnsafeCheckpointError: the file needs arbitrary unpickling.
        InvalidWeightsError: keys are missing or extra, shapes disagree, or NaN/inf.
        ArchitectureError: the model is not a LayerNorm-free attention + ReLU-MLP transformer.
        TaskMismatchError: the task the file records does not fit its weights.
    """
    _check_n_heads(n_heads)
    path = Path(source)
    if path.is_dir():
        return _with_n_heads(_read_run_dir(path), n_heads)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; check the path.")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file; pass a checkpoint file or a run directory.")
    if _is_safetensors(path):
        tensors, info = load_tensors(path)
        return _with_n_heads(_from_tensors(tensors, info, n_heads), n_heads)
    obj = torch_load_safely(path)
    pizza_config = pizza_format.config_path(path)
    if pizza_config is None:
        ckpt = from_object(obj, n_heads, origin=str(path))
        if ckpt.format == "paper" and not ckpt.config.has_eq:
            ckpt = dataclasses.replace(ckpt, notes=(*ckpt.notes, pizza_format.missing_config_note(path.name)))
        return ckpt
    ckpt = from_object(obj, n_heads, origin=str(path))
    config, task, notes = pizza_format.apply_config(ckpt.config, pizza_format.read_config(pizza_config), path.name)
    return dataclasses.replace(ckpt, config=config, task=task, format="clock_and_pizza",
                               notes=ckpt.notes + tuple(notes))


def from_object(obj: object, n_heads: int | None = None, origin: str = "the object") -> Checkpoint:
    """The final model of an object loaded from a torch file (state dict, paper dict or series)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{origin} holds a {type(obj).__name__}, not a state dict; save model.state_dict() instead."
        )
    if pizza_format.is_mlp_only(obj):
        raise pizza_format.refuse_mlp_only(origin)
    if "state_dicts" in obj:
        return read_paper_series(obj, n_heads)[-1]
    if "model" in obj:
        if not isinstance(obj["model"], Mapping):
            raise CheckpointError(
                f"the 'model' entry of {origin} is a {type(obj['model']).__name__}, not a state dict; "
                "save {'model': model.state_dict(), ...} instead."
            )
        ckpt = from_state_dict(obj["model"], n_heads)
        task = _paper_task(obj.get("config"), ckpt.config)
        return dataclasses.replace(ckpt, task=task, step=_as_int(obj.get("epoch"), "the 'epoch' entry"),
                                   recorded_train_loss=_final_loss(obj))
    return from_state_dict(obj, n_heads)


def read_paper_series(obj: Mapping, n_heads: int | None = None) -> list[Checkpoint]:
    """The checkpoints of a paper-style series dict (``state_dicts``, ``epochs``, ...), oldest first.

    Raises:
        CheckpointError: ``state_dicts`` is not a non-empty list, or ``epochs`` does not match it.
        TaskMismatchError: the state dicts are for different moduli p.
        ArchitectureError: the state dicts have different architectures.
    """
    state_dicts = obj.get("state_dicts")
    if not isinstance(state_dicts, Sequence) or isinstance(state_dicts, (str, bytes)):
        raise CheckpointError(
            f"'state_dicts' must be a list of state dicts, got a {type(state_dicts).__name__}."
        )
    if not state_dicts:
        raise CheckpointError("the 'state_dicts' series is empty; there is no model to load.")
    epochs = _series_epochs(obj.get("epochs"), len(state_dicts))
    out = []
    for index, (epoch, state) in enumerate(zip(epochs, state_dicts, strict=True)):
        try:
            ckpt = from_state_dict(state, n_heads)
        except ModAddError as e:
            raise type(e)(f"state_dicts[{index}] (epoch {epoch}): {e}") from e
        if out:
            _check_same_run(out[0], ckpt, index)
        out.append(dataclasses.replace(ckpt, step=epoch))
    task = _paper_task(obj.get("config"), out[0].config)
    return [dataclasses.replace(c, task=task) for c in out]


def from_state_dict(state: Mapping, n_heads: int | None = None) -> Checkpoint:
    """Classify a state dict by its keys and shapes and convert it to canonical weights.

    Examples:
        >>> ckpt = from_state_dict(torch.load("ht.pt", weights_only=True))  # doctest: +SKIP
        >>> ckpt.format, ckpt.config.p
        ('hooked_transformer', 113)
    """
    _check_n_heads(n_heads)
    if isinstance(state, Mapping) and pizza_format.is_mlp_only(state):
        raise pizza_format.refuse_mlp_only("this state dict")
    state = _tensor_dict(state)
    _refuse_layernorm(state)
    if "blocks.0.attn.q.weight" in state:
        return _from_bridge(state, n_heads)
    w_o = state.get("blocks.0.attn.W_O")
    if w_o is not None and w_o.ndim == 2:
        return _from_paper(state, n_heads)
    if w_o is not None and w_o.ndim == 3:
        return _from_hooked_transformer(state, n_heads)
    if w_o is not None:
        raise InvalidWeightsError(
            f"blocks.0.attn.W_O has shape {tuple(w_o.shape)}: expected 2-D [d_model, n_heads*d_head] "
            "(the paper's layout) or 3-D [n_heads, d_head, d_model] (HookedTransformer's)."
        )
    raise CheckpointError(
        "unrecognised state dict: expected the keys of a modadd_interp, paper, HookedTransformer "
        f"or TransformerBridge model (e.g. 'blocks.0.attn.W_O'); got {_names(state)}."
    )


# ------------------------------------------------------------------ formats
def _from_tensors(tensors: dict, info: dict, n_heads: int | None) -> Checkpoint:
    if any(k.startswith("model.") for k in tensors):
        tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if "config" not in info:
        return from_state_dict(tensors, n_heads)
    config = _build_from_metadata(ModelConfig, info["config"], "config")
    task = _build_from_metadata(ModularTask, info["task"], "task") if "task" in info else None
    if task is not None:
        task = dataclasses.replace(task, op_source="recorded", split_source="recorded")
    if task is not None and task.p != config.p:
        raise TaskMismatchError(
            f"the file's metadata records a task with p={task.p}, but its architecture "
            f"(d_vocab={config.d_vocab}) is for p={config.p}; the metadata is inconsistent."
        )
    _refuse_layernorm(tensors)
    weights = check_weights(config, _fill_missing_biases(config, tensors))
    return Checkpoint(config, weights, task, _as_int(info.get("step"), "the metadata's 'step'"), "modadd_interp")


def _read_run_dir(path: Path) -> Checkpoint:
    if not (path / "run.json").exists():
        raise CheckpointError(
            f"{path} is a directory but not a modadd_interp run (no run.json); "
            "pass a checkpoint file or a directory written by modadd_interp.train."
        )
    info = read_run_info(path)
    if not checkpoint_paths(path):
        raise CheckpointError(
            f"the run {path} has no checkpoints yet (checkpoints/ is empty); train it first."
        )
    latest = latest_checkpoint(path)
    if latest is None:
        raise CheckpointError(
            f"every checkpoint of the run {path} is unreadable; retrain, or restore checkpoints/ "
            "from a backup."
        )
    step, tensors, ckpt_info = latest
    return _from_tensors(tensors, {**info, **ckpt_info, "step": step}, None)


def _from_paper(state: dict, n_heads: int | None) -> Checkpoint:
    layers = _layers(state)
    layout = _expand(_PAPER_LAYOUT, layers)
    _require(state, set(layout), optional={f"{b}.attn.mask" for b in layers}, fmt="paper")
    dims = _unify_dims(state, layout, fmt="paper")
    heads, d_head, d_model = dims["n_heads"], dims["d_head"], dims["d_model"]
    _check_heads_given(n_heads, heads)
    config = _checked_config(
        d_vocab=dims["d_vocab"], d_vocab_out=dims["d_vocab_out"], n_ctx=dims["n_ctx"], d_model=d_model,
        n_heads=heads, d_head=d_head, d_mlp=dims["d_mlp"], n_layers=len(layers),
    )
    w = {"embed.W_E": state["embed.W_E"].T, "pos_embed.W_pos": state["pos_embed.W_pos"]}
    for b in layers:
        for x in "QKV":  # paper [heads, d_head, d_model] -> TL [heads, d_model, d_head]
            w[f"{b}.attn.W_{x}"] = state[f"{b}.attn.W_{x}"].transpose(1, 2)
        # paper W_O [d_model, heads*d_head], heads major -> TL [heads, d_head, d_model]
        w[f"{b}.attn.W_O"] = state[f"{b}.attn.W_O"].T.reshape(heads, d_head, d_model)
        w[f"{b}.mlp.W_in"] = state[f"{b}.mlp.W_in"].T
        w[f"{b}.mlp.b_in"] = state[f"{b}.mlp.b_in"]
        w[f"{b}.mlp.W_out"] = state[f"{b}.mlp.W_out"].T
        w[f"{b}.mlp.b_out"] = state[f"{b}.mlp.b_out"]
    w["unembed.W_U"] = state["unembed.W_U"]
    weights = check_weights(config, _fill_missing_biases(config, w))
    return Checkpoint(config, weights, None, None, "paper")


def _from_hooked_transformer(state: dict, n_heads: int | None) -> Checkpoint:
    layers = _layers(state)
    layout = _expand(_HOOKED_LAYOUT, layers)
    optional = {k for k in layout if ".b_" in k} | {f"{b}.attn.{x}" for b in layers for x in ("mask", "IGNORE")}
    _require(state, set(layout) - optional, optional=optional, fmt="HookedTransformer")
    dims = _unify_dims(state, layout, fmt="HookedTransformer")
    _check_heads_given(n_heads, dims["n_heads"])
    config = _checked_config(
        d_vocab=dims["d_vocab"], d_vocab_out=dims["d_vocab_out"], n_ctx=dims["n_ctx"],
        d_model=dims["d_model"], n_heads=dims["n_heads"], d_head=dims["d_head"], d_mlp=dims["d_mlp"],
        n_layers=len(layers),
    )
    weights = {k: v for k, v in state.items() if not k.endswith((".mask", ".IGNORE"))}
    weights = check_weights(config, _fill_missing_biases(config, weights))
    return Checkpoint(config, weights, None, None, "hooked_transformer")


def _from_bridge(state: dict, n_heads: int | None) -> Checkpoint:
    layers = _layers(state)
    layout = _expand(_BRIDGE_LAYOUT, layers)
    _require(state, set(layout) - {"unembed.bias"}, optional={"unembed.bias"}, fmt="TransformerBridge")
    heads = n_heads or DEFAULT_N_HEADS
    width = _unify_dims(state, layout, fmt="TransformerBridge")["n_heads*d_head"]
    if width % heads:
        raise ArchitectureError(
            f"n_heads={heads} does not divide the attention width {width} of this TransformerBridge "
            "state dict (which does not record its head count); pass the right n_heads, one of "
            f"{[h for h in range(1, width + 1) if width % h == 0][:12]}."
        )
    try:
        config, weights = tl_adapter.bridge_to_canonical(state, heads)
    except ArchitectureError as e:
        raise ArchitectureError(f"this TransformerBridge state dict is not a modular-arithmetic model: {e}") from e
    return Checkpoint(config, check_weights(config, weights), None, None, "bridge")


# ------------------------------------------------------------------ helpers
def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}.") from e
    return len(head) == 9 and head[8:9] == b"{"


def _check_n_heads(n_heads: object) -> None:
    if n_heads is not None and (isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1):
        raise ArchitectureError(f"n_heads must be a positive integer, got {n_heads!r}.")


def _check_heads_given(n_heads: int | None, heads: int) -> None:
    if n_heads is not None and n_heads != heads:
        raise ArchitectureError(
            f"the file has {heads} heads, but n_heads={n_heads} was given; drop n_heads or pass {heads}."
        )


def _with_n_heads(ckpt: Checkpoint, n_heads: int | None) -> Checkpoint:
    if ckpt.format != "bridge":
        _check_heads_given(n_heads, ckpt.config.n_heads)
    return ckpt


def _tensor_dict(state: object) -> dict[str, torch.Tensor]:
    """``state`` as a dict of dense tensors keyed by strings, or a clear error."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got a {type(state).__name__}.")
    if not state:
        raise CheckpointError("the state dict is empty: it holds no weights.")
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointError(f"state dict keys must be strings; got {[repr(k) for k in bad_keys[:5]]}.")
    not_tensors = {k: type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if not_tensors:
        shown = ", ".join(f"{k!r} ({t})" for k, t in sorted(not_tensors.items())[:5])
        raise CheckpointError(
            f"expected a state dict of tensors, but {len(not_tensors)} values are not tensors: {shown}. "
            "Save model.state_dict(), not the model or other objects."
        )
    not_dense = sorted(k for k, v in state.items() if v.layout != torch.strided)
    if not_dense:
        raise InvalidWeightsError(f"weights must be dense tensors; {not_dense[:5]} are sparse or quantized.")
    return dict(state)


def _refuse_layernorm(state: Mapping) -> None:
    norms = sorted(k for k in state if _LAYERNORM_KEY.search(k))
    if norms:
        raise ArchitectureError(
            f"this state dict has LayerNorm weights ({norms[:4]}); modadd_interp analyses one-layer "
            "attention + ReLU-MLP transformers without LayerNorm (normalization_type=None)."
        )


def _layers(state: Mapping) -> list[str]:
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")
                      and k.split(".")[1].isdecimal()})
    if not indices:
        raise InvalidWeightsError("the state dict has no 'blocks.N.*' keys: no transformer block.")
    if indices != list(range(len(indices))):
        raise InvalidWeightsError(f"the block indices {indices} are not contiguous from 0.")
    return [f"blocks.{i}" for i in indices]


def _expand(layout: dict[str, tuple[str, ...]], layers: list[str]) -> dict[str, tuple[str, ...]]:
    """A layout table with ``{b}`` replaced by every block, in table order."""
    out = {}
    for key, dims in layout.items():
        for b in layers if "{b}" in key else [""]:
            out[key.replace("{b}", b)] = dims
    return out


def _unify_dims(
    state: Mapping[str, torch.Tensor], layout: dict[str, tuple[str, ...]], fmt: str,
    known: dict[str, int] | None = None,
) -> dict[str, int]:
    """Read every named dimension from the tensors present; raise if two tensors disagree.

    Example: with ``embed.W_E`` ``[d_model=128, d_vocab=114]`` first, a ``pos_embed.W_pos``
    of shape ``[3, 64]`` raises, naming ``d_model=128``.
    """
    dims = dict(known or {})
    for key, names in layout.items():
        if key not in state:
            continue
        shape = tuple(state[key].shape)
        if len(shape) != len(names):
            raise InvalidWeightsError(
                f"{key} has shape {shape} ({len(shape)}-D), but a {fmt} state dict stores it as "
                f"[{', '.join(names)}] ({len(names)}-D)."
            )
        for name, size in zip(names, shape, strict=True):
            factors = name.split("*")
            if name in dims:
                expected = dims[name]
            elif all(f in dims for f in factors):
                expected = math.prod(dims[f] for f in factors)
            else:
                expected = None
            if expected is None:
                dims[name] = size
            elif expected != size:
                raise InvalidWeightsError(
                    f"{key} has shape {shape}, but its {name} should be {expected} to match the other "
                    f"weights ({fmt} layout [{', '.join(names)}]); the file mixes tensors of different models."
                )
    return dims


def _require(state: Mapping, required: set[str], optional: set[str], fmt: str) -> None:
    missing = sorted(required - set(state))
    extra = sorted(set(state) - required - optional)
    if missing or extra:
        raise InvalidWeightsError(
            f"this looks like a {fmt} state dict, but keys are "
            + (f"missing: {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected: {extra}" if extra else "")
            + ". Check that the file is a complete one-layer modular-arithmetic model."
        )


def _fill_missing_biases(config: ModelConfig, weights: dict) -> dict:
    """Zeros for the biases a format does not have (the paper has no attention/unembed bias)."""
    out = dict(weights)
    for name, shape in config.shapes().items():
        if ".b_" in name and name not in out:
            out[name] = torch.zeros(shape)
    return out


def _checked_config(**dims: int) -> ModelConfig:
    """The :class:`ModelConfig` of weights read from a file without a config: ``(a, b, '=')`` when
    ``n_ctx >= 3``, else ``(a, b)``; an ArchitectureError naming the file's shapes if they do not fit."""
    try:
        return ModelConfig(**dims, has_eq=dims["n_ctx"] >= 3)
    except ArchitectureError as e:
        raise ArchitectureError(
            f"the weights (d_vocab={dims['d_vocab']}, d_vocab_out={dims['d_vocab_out']}, n_ctx={dims['n_ctx']}) "
            f"are not a modular-arithmetic model's: {e} A model has p number tokens (+ '=') and >= p outputs."
        ) from e


def _build_from_metadata(cls: type, fields: object, what: str):
    """``cls(**fields)`` for a ModelConfig or ModularTask recorded in a file's metadata."""
    if not isinstance(fields, Mapping):
        raise CheckpointError(f"the file's metadata '{what}' must be a JSON object, got {fields!r}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CheckpointError(
            f"the file's metadata '{what}' has unknown fields {unknown} (known: {sorted(known)}); "
            "it was written by another tool or a newer modadd_interp."
        )
    try:
        return cls(**fields)
    except (TypeError, ValueError, TaskMismatchError) as e:
        raise CheckpointError(f"the file's metadata '{what}' is malformed: {e}") from e


def _as_int(value: object, what: str) -> int | None:
    """``value`` as an int (None stays None); integral floats and 0-d tensors are accepted."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise CheckpointError(f"{what} must be an integer, got {value!r}.")
    return int(value)


def _series_epochs(epochs: object, count: int) -> list[int]:
    if epochs is None:
        return list(range(count))
    if isinstance(epochs, torch.Tensor):
        epochs = epochs.tolist() if epochs.ndim == 1 else epochs
    if not isinstance(epochs, Sequence) or isinstance(epochs, (str, bytes)):
        raise CheckpointError(f"'epochs' must be a list of integers, got a {type(epochs).__name__}.")
    if len(epochs) != count:
        raise CheckpointError(
            f"the series has {count} state_dicts but {len(epochs)} epochs; each state dict needs its epoch."
        )
    out = [_as_int(e, f"epochs[{i}]") for i, e in enumerate(epochs)]
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise CheckpointError(f"'epochs' must be strictly increasing, got {out[:10]}.")
    return out


def _check_same_run(first: Checkpoint, other: Checkpoint, index: int) -> None:
    """Raise unless ``other`` (``state_dicts[index]``) has the architecture of ``state_dicts[0]``."""
    if other.config.p != first.config.p:
        raise TaskMismatchError(
            f"the series mixes moduli: state_dicts[0] is for p={first.config.p} but "
            f"state_dicts[{index}] is for p={other.config.p}; a series must hold checkpoints of one run."
        )
    if other.config != first.config:
        diff = {k: (v, getattr(other.config, k)) for k, v in first.config.to_dict().items()
                if getattr(other.config, k) != v}
        raise ArchitectureError(
            f"the series mixes architectures: state_dicts[{index}] differs from state_dicts[0] in "
            f"{diff}; a series must hold checkpoints of one run."
        )


def _paper_task(config: object, model_config: ModelConfig) -> ModularTask | None:
    """The task a paper config records (its split: seed + frac_train, ``random.shuffle``)."""
    if config is None or (isinstance(config, Mapping) and not config):
        return None
    if not isinstance(config, Mapping):
        raise CheckpointError(f"the file's 'config' entry must be a dict, got a {type(config).__name__}.")
    fn = config.get("fn_name", "add")
    if fn not in _PAPER_FN_NAMES:
        raise TaskMismatchError(
            f"the file's config names fn_name={fn!r}; supported: {sorted(_PAPER_FN_NAMES)} (the paper's names)."
        )
    p = _as_int(config.get("p", model_config.p), "the config's 'p'")
    if p != model_config.p:
        raise TaskMismatchError(
            f"the file's config says p={p}, but its weights (d_vocab={model_config.d_vocab}) are for "
            f"p={model_config.p}: the config does not belong to these weights. Fix or drop the config."
        )
    frac = config.get("frac_train", 0.3)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)):
        raise CheckpointError(f"the config's 'frac_train' must be a number, got {frac!r}.")
    seed = _as_int(config.get("seed", 0), "the config's 'seed'")
    return ModularTask(p=p, op=_PAPER_FN_NAMES[fn], frac_train=float(frac), seed=seed, split="paper",
                       op_source="recorded", split_source="recorded")


_PAPER_FN_NAMES = {"add": "add", "subtract": "sub"}
"""The progress-measures paper's ``fn_name`` values for operations we read (its ``x2xyy2`` and ``rand`` are not
binary group operations)."""


def _final_loss(obj: Mapping) -> float | None:
    """The last training loss a paper-style dict recorded (``train_loss`` or ``train_losses[-1]``)."""
    losses = obj.get("train_losses")
    last = losses[-1] if isinstance(losses, (Sequence, torch.Tensor)) and len(losses) else None
    for value in (obj.get("train_loss"), last):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
    return None


def _names(state: Mapping, limit: int = 10) -> str:
    keys = sorted(state)
    return str(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
