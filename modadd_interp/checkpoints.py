"""Recognise every supported checkpoint format and convert it to canonical weights.

Formats (see docs/formats.md):
    1. ours: safetensors with canonical keys (optionally under ``model.``) and our JSON
       metadata (architecture + task) in the header, or a run directory from :func:`train`;
    2. the progress-measures paper: ``embed.W_E`` is ``[d_model, d_vocab]``, bare, under
       ``"model"``, or a series under ``"state_dicts"``;
    3. a TransformerLens <= 3 ``HookedTransformer.state_dict()``;
    4. a TransformerLens 4 ``TransformerBridge`` (``boot_native``) state dict.

Torch files load only with ``weights_only=True``; anything that needs arbitrary
unpickling is refused before any of it runs.

Example:
    >>> ckpt = read_checkpoint("model.safetensors")  # doctest: +SKIP
    >>> ckpt.config.d_model, ckpt.task
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import torch

from . import tl_adapter
from .config import ModelConfig, check_weights
from .errors import ArchitectureError, CheckpointError, InvalidWeightsError, TaskMismatchError
from .storage import load_tensors, torch_load_safely
from .task import ModularTask
from .train import checkpoint_paths, latest_checkpoint, read_run_info

DEFAULT_N_HEADS = 4  # the paper's architecture; a bridge state dict does not record it


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One model's weights as read from a file.

    Attributes:
        config: the architecture.
        weights: canonical weights (see :mod:`modadd_interp.config`).
        task: the task and split when the file records them, else None.
        step: the training step when known.
        format: ``"modadd_interp"``, ``"paper"``, ``"hooked_transformer"`` or ``"bridge"``.
    """

    config: ModelConfig
    weights: dict[str, torch.Tensor]
    task: ModularTask | None
    step: int | None
    format: str


def read_checkpoint(source: str | Path, n_heads: int | None = None) -> Checkpoint:
    """Read the final model of any supported file or run directory.

    Args:
        source: a ``.safetensors`` or torch file, or a run directory from :func:`train`.
        n_heads: the head count, needed only for a bare bridge state dict (default 4).

    Raises:
        CheckpointError: the path is missing, empty, truncated or not a checkpoint.
        UnsafeCheckpointError: the file needs arbitrary unpickling.
        InvalidWeightsError: keys are missing or extra, shapes disagree, or NaN/inf.
    """
    path = Path(source)
    if path.is_dir():
        return _read_run_dir(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist.")
    if _is_safetensors(path):
        tensors, info = load_tensors(path)
        return _from_tensors(tensors, info, n_heads)
    obj = torch_load_safely(path)
    if isinstance(obj, Mapping) and "state_dicts" in obj:
        series = read_paper_series(obj, n_heads)
        if not series:
            raise CheckpointError(f"{path} has an empty 'state_dicts' series.")
        return series[-1]
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        ckpt = from_state_dict(obj["model"], n_heads)
        task = _paper_task(obj.get("config"), ckpt.config)
        step = obj.get("epoch")
        return dataclasses.replace(ckpt, task=task, step=int(step) if step is not None else None)
    if isinstance(obj, Mapping):
        return from_state_dict(obj, n_heads)
    raise CheckpointError(
        f"{path} holds a {type(obj).__name__}, not a state dict; save model.state_dict() instead."
    )


def read_paper_series(obj: Mapping, n_heads: int | None = None) -> list[Checkpoint]:
    """The checkpoints of a paper-style series dict (``state_dicts``, ``epochs``, ...)."""
    state_dicts = obj["state_dicts"]
    epochs = obj.get("epochs") or list(range(len(state_dicts)))
    if len(epochs) != len(state_dicts):
        raise CheckpointError(
            f"the series has {len(state_dicts)} state_dicts but {len(epochs)} epochs."
        )
    task = _paper_task(obj.get("config"), None)
    out = []
    for epoch, state in zip(epochs, state_dicts, strict=True):
        ckpt = from_state_dict(state, n_heads)
        out.append(dataclasses.replace(ckpt, step=int(epoch), task=task))
    return out


def from_state_dict(state: Mapping, n_heads: int | None = None) -> Checkpoint:
    """Classify a state dict by its keys and shapes and convert it to canonical weights."""
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            "expected a state dict of tensors; got "
            + (f"keys {sorted(state)[:8]}" if state else "an empty dict") + "."
        )
    state = dict(state)
    if "blocks.0.attn.q.weight" in state:
        _require(state, _bridge_keys(state), optional={"unembed.bias"}, fmt="TransformerBridge")
        config, weights = tl_adapter.bridge_to_canonical(state, n_heads or DEFAULT_N_HEADS)
        return Checkpoint(config, check_weights(config, weights), None, None, "bridge")
    w_o = state.get("blocks.0.attn.W_O")
    if w_o is not None and w_o.ndim == 2:
        return _from_paper(state, n_heads)
    if w_o is not None and w_o.ndim == 3:
        return _from_hooked_transformer(state, n_heads)
    raise CheckpointError(
        "unrecognised state dict: expected the keys of a modadd_interp, paper, HookedTransformer "
        f"or TransformerBridge model (e.g. 'blocks.0.attn.W_O'); got {sorted(state)[:10]}."
    )


# ------------------------------------------------------------------ formats
def _from_tensors(tensors: dict, info: dict, n_heads: int | None) -> Checkpoint:
    if any(k.startswith("model.") for k in tensors):
        tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if "config" not in info:
        return from_state_dict(tensors, n_heads)
    try:
        config = ModelConfig(**info["config"])
        task = ModularTask(**info["task"]) if "task" in info else None
    except TypeError as e:
        raise CheckpointError(f"the metadata's config or task is malformed: {e}.") from e
    weights = check_weights(config, _fill_missing_biases(config, tensors))
    return Checkpoint(config, weights, task, info.get("step"), "modadd_interp")


def _read_run_dir(path: Path) -> Checkpoint:
    if not (path / "run.json").exists():
        raise CheckpointError(
            f"{path} is a directory but not a modadd_interp run (no run.json); "
            "pass a checkpoint file or a directory written by modadd_interp.train."
        )
    info = read_run_info(path)
    if not checkpoint_paths(path):
        raise CheckpointError(f"the run {path} has no checkpoints yet (checkpoints/ is empty).")
    latest = latest_checkpoint(path)
    if latest is None:
        raise CheckpointError(f"every checkpoint of the run {path} is unreadable.")
    step, tensors, ckpt_info = latest
    return _from_tensors(tensors, {**info, **ckpt_info, "step": step}, None)


def _from_paper(state: dict, n_heads: int | None) -> Checkpoint:
    required = {"embed.W_E", "pos_embed.W_pos", "unembed.W_U"}
    layers = _layers(state)
    for b in layers:
        required |= {f"{b}.attn.W_{x}" for x in "QKVO"}
        required |= {f"{b}.mlp.{x}" for x in ("W_in", "b_in", "W_out", "b_out")}
    _require(state, required, optional={f"{b}.attn.mask" for b in layers}, fmt="paper")
    d_model, d_vocab = state["embed.W_E"].shape
    heads, d_head, _ = state["blocks.0.attn.W_Q"].shape
    if n_heads is not None and n_heads != heads:
        raise ArchitectureError(f"the file has {heads} heads, but n_heads={n_heads} was given.")
    config = _config_or_error(
        d_vocab=d_vocab, d_vocab_out=state["unembed.W_U"].shape[1], n_ctx=state["pos_embed.W_pos"].shape[0],
        d_model=d_model, n_heads=heads, d_head=d_head, d_mlp=state["blocks.0.mlp.W_in"].shape[0],
        n_layers=len(layers),
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
    required = {"embed.W_E", "pos_embed.W_pos", "unembed.W_U"}
    optional = {"unembed.b_U"}
    for b in layers:
        required |= {f"{b}.attn.W_{x}" for x in "QKVO"} | {f"{b}.mlp.W_in", f"{b}.mlp.W_out"}
        optional |= {f"{b}.attn.b_{x}" for x in "QKVO"} | {f"{b}.mlp.b_in", f"{b}.mlp.b_out"}
        optional |= {f"{b}.attn.mask", f"{b}.attn.IGNORE"}
    _require(state, required, optional=optional, fmt="HookedTransformer")
    heads, d_model, d_head = state["blocks.0.attn.W_Q"].shape
    if n_heads is not None and n_heads != heads:
        raise ArchitectureError(f"the file has {heads} heads, but n_heads={n_heads} was given.")
    config = _config_or_error(
        d_vocab=state["embed.W_E"].shape[0], d_vocab_out=state["unembed.W_U"].shape[1],
        n_ctx=state["pos_embed.W_pos"].shape[0], d_model=d_model, n_heads=heads, d_head=d_head,
        d_mlp=state["blocks.0.mlp.W_in"].shape[1], n_layers=len(layers),
    )
    weights = {k: v for k, v in state.items() if not k.endswith((".mask", ".IGNORE"))}
    weights = check_weights(config, _fill_missing_biases(config, weights))
    return Checkpoint(config, weights, None, None, "hooked_transformer")


# ------------------------------------------------------------------ helpers
def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _layers(state: Mapping) -> list[str]:
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")
                      and k.split(".")[1].isdigit()})
    if not indices:
        raise InvalidWeightsError("the state dict has no 'blocks.N.*' keys: no transformer block.")
    if indices != list(range(len(indices))):
        raise InvalidWeightsError(f"the block indices {indices} are not contiguous from 0.")
    return [f"blocks.{i}" for i in indices]


def _bridge_keys(state: Mapping) -> set[str]:
    keys = {"embed.weight", "pos_embed.weight", "unembed.weight"}
    for b in _layers(state):
        keys |= {f"{b}.attn.{x}.{y}" for x in "qkvo" for y in ("weight", "bias")}
        keys |= {f"{b}.mlp.{x}.{y}" for x in ("in", "out") for y in ("weight", "bias")}
    return keys


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


def _config_or_error(**fields: int) -> ModelConfig:
    if fields["d_vocab_out"] not in (fields["d_vocab"], fields["d_vocab"] - 1):
        raise ArchitectureError(
            f"d_vocab={fields['d_vocab']} inputs but d_vocab_out={fields['d_vocab_out']} outputs: a "
            "modular-arithmetic model has p+1 input tokens (p numbers and '=') and p or p+1 outputs."
        )
    return ModelConfig(**fields)


def _paper_task(config: Mapping | None, model_config: ModelConfig | None) -> ModularTask | None:
    """The task a paper config records (its split: seed + frac_train, ``random.shuffle``)."""
    if not config:
        return None
    fn = config.get("fn_name", "add")
    if fn != "add":
        raise TaskMismatchError(
            f"the file's config names fn_name={fn!r}; only modular addition ('add') is supported."
        )
    p = int(config.get("p", model_config.p if model_config else 0))
    if model_config is not None and p != model_config.p:
        raise CheckpointError(f"the file's config says p={p} but its weights are for p={model_config.p}.")
    return ModularTask(p=p, op="add", frac_train=float(config.get("frac_train", 0.3)),
                       seed=int(config.get("seed", 0)), split="paper")
