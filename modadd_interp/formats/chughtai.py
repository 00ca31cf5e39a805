"""Chughtai, Chan & Nanda's format (2023, "A Toy Model of Universality"; the public repository
``bilal-chughtai/rep-theory-mech-interp``): a run directory with ``cfg.json`` and ``model.pt``.

Their ``train.py`` saves ``torch.save(model.state_dict(), f"{task_dir}/model.pt")`` (and
``checkpoints/epoch_{n}.pt`` on the way) beside the ``cfg.json`` it was trained from. Two models (``utils/models.py``):

* ``OneLayerMLP``: ``W_x``, ``W_y`` ``[n, E]``, ``W`` ``[2E, H]``, ``W_U`` ``[H, n]``, no biases;
  ``logits = relu(hstack(W_x[x], W_y[y]) @ W) @ W_U``. Read as :meth:`ModelConfig.mlp` (concatenated, separate
  tables, ReLU, no bias): :mod:`modadd_interp.mlp`.
* ``Transformer``: a TransformerLens ``HookedTransformer`` state dict (1 block, ReLU, no LayerNorm, causal
  attention, biases frozen at zero) on inputs ``(x, y, '=')`` with ``'='`` token ``n``: ``d_vocab = n + 1``,
  ``d_vocab_out = n``, logits at the last position. Its ``x_embed`` and ``y_embed`` entries are copies of
  ``embed.W_E`` (their forward assigns the parameter to those names) and are dropped.

``cfg.json`` gives the group (``group``: ``SymmetricGroup``, ``AlternatingGroup``, ``DihedralGroup``,
``CyclicGroup``; ``group_parameter``) and the split (``frac_train``, ``seed``). Their element orders
(``utils/groups.py``): S_n and A_5 are sympy's enumerations (:mod:`modadd_interp.groups.sympy_orders`, recorded),
D_n is rotations ``r^a`` then reflections ``r^a s`` (our :func:`~modadd_interp.groups.dihedral`), C_n the integers
(op ``add``). The task's op is the group in their order (:func:`~modadd_interp.operations.operation_of_group`).

**The split** (``Group.get_all_data``): the row-major grid ``x * n + y``, permuted by
``torch.manual_seed(seed); torch.randperm(n * n)`` when ``seed`` is truthy, the first ``int(frac_train * n * n)``
training: our ``split="randperm"``. With ``seed`` 0 nothing is shuffled (the first rows train), a split our tasks do
not express: it is then unknown, with a notice.

``mi.load_run(run_dir)`` reads ``checkpoints/epoch_<n>.pt`` and then ``model.pt`` as a series (steps: the epochs,
then ``num_epochs``). This format claims a directory holding ``cfg.json`` and ``model.pt``; a file with ``cfg.json``
beside it (or, for ``checkpoints/epoch_<n>.pt``, one directory up); and, without a ``cfg.json``, a state dict with
their MLP's keys or the transformer's ``x_embed``/``y_embed`` (then the group and split are read from the model, with
a notice).

Examples:
    >>> ckpt = read(Source.of_path("batch_experiments/S5_MLP_seed1"), ReadOptions())   # doctest: +SKIP
    >>> ckpt.config.arch, ckpt.task.op[:3], ckpt.task.split, ckpt.step   # doctest: +SKIP
    ('mlp', 'S5~', 'randperm', 250000)
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import ModelConfig, check_weights
from ..errors import ArchitectureError, CheckpointError, InvalidWeightsError
from ..groups import cyclic, dihedral
from ..groups.sympy_orders import sympy_group
from ..mlp import to_canonical
from ..operations import operation_of_group
from ..task import ModularTask
from .checkpoint import Checkpoint, Series
from .hooked_transformer import CANONICAL
from .layout import Layout, config_of_dims, fill_missing_biases, require_keys, tensor_dict
from .registry import ReadOptions
from .source import Source

NAME = "chughtai"
CFG_NAME = "cfg.json"
MODEL_NAME = "model.pt"
GROUPS = ("SymmetricGroup", "AlternatingGroup", "DihedralGroup", "CyclicGroup")
MODELS = ("OneLayerMLP", "Transformer")
_EPOCH = re.compile(r"^epoch_(?P<n>\d+)\.pt$")

MLP = Layout("Chughtai et al. OneLayerMLP", {
    "W_x": ("n", "d_embed"),
    "W_y": ("n", "d_embed"),
    "W": ("2*d_embed", "d_mlp"),
    "W_U": ("d_mlp", "n"),
})
"""Their ``OneLayerMLP``'s state dict: ``n`` the group's order, ``E = d_embed``, ``H = d_mlp``."""

EMBED_COPIES = ("x_embed", "y_embed")


# ------------------------------------------------------------------ finding the files
def cfg_path(path: Path) -> Path | None:
    """The ``cfg.json`` of a run directory, of a file beside it, or of ``checkpoints/epoch_<n>.pt``; None if absent."""
    path = Path(path)
    candidates = [path / CFG_NAME] if path.is_dir() else [path.with_name(CFG_NAME)]
    if not path.is_dir() and path.parent.name == "checkpoints":
        candidates.append(path.parent.parent / CFG_NAME)
    return next((c for c in candidates if c.is_file()), None)


def _looks_like_cfg(path: Path) -> bool:
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(raw, dict) and "group" in raw and "model" in raw


def is_their_state(obj: object) -> bool:
    """Their ``OneLayerMLP``'s keys (``W_x``, ``W_y``, ``W``, ``W_U``), or a ``HookedTransformer`` state dict with
    their ``x_embed``/``y_embed`` copies."""
    if not isinstance(obj, Mapping):
        return False
    return {"W_x", "W_y", "W"} <= set(obj) or (set(EMBED_COPIES) <= set(obj) and "embed.W_E" in obj)


def sniff(src: Source) -> bool:
    """A directory with ``cfg.json`` and ``model.pt``; a file with their ``cfg.json`` beside it; or their keys."""
    if src.is_dir:  # no other format reads such a directory: what is wrong with it is then named by read()
        cfg = src.path / CFG_NAME
        return cfg.is_file() and ((src.path / MODEL_NAME).is_file() or _looks_like_cfg(cfg))
    if src.is_file and src.path.suffix != ".json":
        cfg = cfg_path(src.path)
        if cfg is not None and _looks_like_cfg(cfg):
            return True
    return is_their_state(src.content)


# ------------------------------------------------------------------ reading
def read(src: Source, options: ReadOptions) -> Checkpoint | Series:
    """Their weights as the canonical layout, with the task their ``cfg.json`` records; for ``load_run`` of a run
    directory with ``checkpoints/epoch_<n>.pt``, every checkpoint (oldest first) and then ``model.pt``.

    Raises:
        CheckpointError: ``cfg.json`` is not a JSON object, names an unknown group or model, or has a malformed
            field; a run directory without ``model.pt``.
        ArchitectureError: the group's order does not fit the weights' shapes.
        InvalidWeightsError: tensors missing, unexpected or of the wrong shape (each named).
    """
    file = src.path / MODEL_NAME if src.is_dir else src.path
    if file is not None and not file.is_file():
        raise CheckpointError(f"{src.path} has a {CFG_NAME} but no {MODEL_NAME}: nothing to load.")
    cfg_file = cfg_path(src.path) if src.path is not None else None
    final = _read_one(src if not src.is_dir else Source.of_path(file), file, cfg_file)
    epochs = epoch_files(src.path) if src.is_dir and options.series and cfg_file is not None else []
    if not epochs:
        return final
    series = [_read_one(Source.of_path(f), f, cfg_file) for _, f in epochs]
    if final.step is None or final.step > epochs[-1][0]:
        series.append(final)
    return Series(tuple(series))


def epoch_files(run: Path) -> list[tuple[int, Path]]:
    """``[(n, checkpoints/epoch_<n>.pt)]`` of a run directory, by ``n``."""
    folder = Path(run) / "checkpoints"
    found = [(_EPOCH.match(f.name), f) for f in folder.iterdir()] if folder.is_dir() else []
    return sorted((int(m.group("n")), f) for m, f in found if m is not None and f.is_file())


def _read_one(inner: Source, file: Path | None, cfg_file: Path | None) -> Checkpoint:
    state = tensor_dict(inner.load())
    origin = str(file) if file is not None else inner.origin
    if cfg_file is None:
        return _read_without_cfg(state, origin)
    raw = read_cfg(cfg_file)
    kind, order, group_word = check_cfg(raw, cfg_file)
    config, weights = (_mlp_weights if kind == "OneLayerMLP" else _transformer_weights)(state, order, origin,
                                                                                        cfg_file, group_word)
    if kind == "OneLayerMLP":
        check_layers(raw.get("layers"), config, cfg_file, origin)
    task, notes = task_of(raw, order, cfg_file)
    epoch = _EPOCH.match(file.name) if file is not None else None
    step = int(epoch.group("n")) if epoch else _int_or_none(raw.get("num_epochs"))
    return Checkpoint(config, weights, task, step, NAME, notes=tuple(notes),
                      recorded_train_loss=_recorded_train_loss(file) if epoch is None else None)


def _read_without_cfg(state: dict, origin: str) -> Checkpoint:
    note = (f"{origin} has no {CFG_NAME} beside it: its group, element order and split are not recorded; the group "
            "is read from the model's answers. Put its cfg.json beside it to use the recorded ones.")
    if {"W_x", "W_y", "W"} <= set(state):
        config, weights = _mlp_weights(state, None, origin, None, "")
    else:
        config, weights = _transformer_weights(state, None, origin, None, "")
    return Checkpoint(config, weights, None, None, NAME, notes=(note,))


def read_cfg(path: Path) -> dict:
    """The parsed ``cfg.json``; a clear error if it is not a JSON object."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}.") from e
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} must be a JSON object (Chughtai et al.'s cfg.json), got {type(raw).__name__}.")
    return raw


def group_order(group: str, parameter: int) -> int:
    """The order of their ``group`` with ``group_parameter``: ``n!``, ``n!/2``, ``2n``, ``n``.

    Examples:
        >>> group_order("SymmetricGroup", 4), group_order("AlternatingGroup", 5), group_order("DihedralGroup", 59)
        (24, 60, 118)
    """
    return {"SymmetricGroup": math.factorial(parameter), "AlternatingGroup": math.factorial(parameter) // 2,
            "DihedralGroup": 2 * parameter, "CyclicGroup": parameter}[group]


def check_cfg(raw: dict, path: Path) -> tuple[str, int, str]:
    """``(model, group order, "SymmetricGroup 5 (order 120)")`` of a ``cfg.json``, or a one-line error naming the
    file and the field."""
    model, group, parameter = raw.get("model"), raw.get("group"), raw.get("group_parameter")
    if model not in MODELS:
        raise CheckpointError(f"{path}: model {model!r} is not supported; modadd_interp reads Chughtai et al.'s "
                              f"{' and '.join(MODELS)} (BilinearNet and OneLayerMLPwithBias are not).")
    if group not in GROUPS:
        raise CheckpointError(f"{path}: group {group!r} is unknown; Chughtai et al.'s utils/groups.py defines "
                              f"{', '.join(GROUPS)}.")
    if isinstance(parameter, bool) or not isinstance(parameter, int) or parameter < 1:
        raise CheckpointError(f"{path}: group_parameter must be a positive integer, got {parameter!r}.")
    if group == "AlternatingGroup" and parameter != 5:
        raise CheckpointError(f"{path}: AlternatingGroup {parameter}: their code implements A_n for n = 5 only, so "
                              "its element order is unknown.")
    if group == "SymmetricGroup" and parameter > 6:
        raise CheckpointError(f"{path}: SymmetricGroup {parameter}: sympy's element order is recorded for n <= 6 "
                              "only (modadd_interp.groups.sympy_orders).")
    order = group_order(group, parameter)
    return model, order, f"{group} {parameter} (order {order})"


def check_layers(layers: object, config: ModelConfig, path: Path, origin: str) -> None:
    """Their ``OneLayerMLP`` is built from ``cfg.json``'s ``layers`` (``embed_dim``, ``hidden_dim``): weights of other
    widths would not have loaded into it (their ``Transformer`` ignores ``layers``)."""
    if not isinstance(layers, Mapping):
        return
    for key, value in (("embed_dim", config.d_embed), ("hidden_dim", config.d_mlp)):
        if key in layers and layers[key] != value:
            raise ArchitectureError(f"{path} says layers.{key}={layers[key]!r}, but {origin}'s weights have {value}: "
                                    "the cfg.json does not belong to these weights.")


def their_group(group: str, parameter: int):
    """Their group as a :class:`~modadd_interp.groups.Group` in their element order (module docstring)."""
    if group == "SymmetricGroup":
        return sympy_group("S", parameter)
    if group == "AlternatingGroup":
        return sympy_group("A", parameter)
    return dihedral(parameter) if group == "DihedralGroup" else cyclic(parameter)


def task_of(raw: dict, order: int, path: Path) -> tuple[ModularTask, list[str]]:
    """The task ``cfg.json`` records: the op of their group in their order, and their split (module docstring)."""
    notes: list[str] = []
    group, parameter = raw["group"], raw["group_parameter"]
    op = "add" if group == "CyclicGroup" else operation_of_group(their_group(group, parameter))
    frac, seed = raw.get("frac_train"), raw.get("seed")
    frac_ok = isinstance(frac, (int, float)) and not isinstance(frac, bool) and 0 < frac <= 1
    seed_ok = isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0
    if frac_ok and seed_ok and seed:
        return ModularTask(p=order, op=op, frac_train=float(frac), seed=seed, split="randperm",
                           op_source="recorded", split_source="recorded"), notes
    if frac_ok and seed_ok:
        notes.append(f"{path}: seed 0 means their data was not shuffled (the first {int(frac * order * order)} "
                     "pairs in row-major order trained), a split modadd_interp's tasks do not express: the split is "
                     "treated as unknown (full-grid figures only)")
    else:
        notes.append(f"{path}: frac_train {frac!r} / seed {seed!r} do not describe a split; the split is unknown "
                     "(full-grid figures only)")
    return ModularTask(p=order, op=op, frac_train=float(frac) if frac_ok else 0.3, split="unknown",
                       op_source="recorded", split_source="recorded"), notes


def _mlp_weights(state: dict, order: int | None, origin: str, cfg_file: Path | None,
                 group_word: str) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    require_keys(state, set(MLP.axes), set(), MLP.fmt)
    if order is not None and state["W_x"].ndim == 2 and state["W_x"].shape[0] != order:
        raise ArchitectureError(
            f"{cfg_file} says {group_word}, but {origin}'s W_x has {state['W_x'].shape[0]} rows (one per element): "
            "the cfg.json does not belong to these weights.")
    dims = MLP.dims(state, blocks=[])
    n, e, h = dims["n"], dims["d_embed"], dims["d_mlp"]
    if dims["2*d_embed"] != 2 * e:
        raise InvalidWeightsError(f"{origin}: W has {dims['2*d_embed']} rows, but hstack(W_x, W_y) has 2 * {e} = "
                                  f"{2 * e} columns.")
    config = ModelConfig.mlp(n, d_embed=e, d_mlp=h)
    own = {"embed_x": state["W_x"], "embed_y": state["W_y"], "W_in": state["W"], "W_U": state["W_U"],
           "b_in": torch.zeros(h), "b_U": torch.zeros(n)}
    return config, check_weights(config, to_canonical(config.mlp_config(), {k: v.float() for k, v in own.items()}))


def _transformer_weights(state: dict, order: int | None, origin: str, cfg_file: Path | None,
                         group_word: str) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    state = dict(state)
    copies = {k: state.pop(k) for k in EMBED_COPIES if k in state}
    w_e = state.get("embed.W_E")
    for name, copy in copies.items():
        if w_e is None or copy.shape != w_e.shape or not torch.equal(copy, w_e):
            raise InvalidWeightsError(f"{origin}: {name} should be a copy of embed.W_E (their forward assigns it), "
                                      "but it differs: the state dict was edited or is not theirs.")
    if order is not None and w_e is not None and w_e.ndim == 2 and w_e.shape[0] != order + 1:
        raise ArchitectureError(
            f"{cfg_file} says {group_word}, but {origin}'s embed.W_E has {w_e.shape[0]} rows, not {order} + 1 "
            "(the elements and '='): the cfg.json does not belong to these weights.")
    blocks, dims = CANONICAL.read(state)
    config = config_of_dims(dims, len(blocks))
    if config.n_ctx != 3 or config.d_vocab_out != config.p:
        raise ArchitectureError(f"{origin}: their Transformer reads (x, y, '=') with n outputs; these weights have "
                                f"n_ctx={config.n_ctx} and {config.d_vocab_out} outputs for {config.p} elements.")
    config = dataclasses.replace(config, act_fn="relu", attn_rate=1.0, attention_dir="causal", has_eq=True,
                                 separate_b_tokens=False)
    weights = {k: v for k, v in state.items() if not k.endswith((".mask", ".IGNORE"))}
    return config, check_weights(config, fill_missing_biases(config, weights))


def _recorded_train_loss(file: Path | None) -> float | None:
    """The final ``train_loss`` their ``eval.py`` wrote to ``summary_metrics.json`` beside ``model.pt``, if any."""
    if file is None or not (file.with_name("summary_metrics.json")).is_file():
        return None
    try:
        loss = json.loads(file.with_name("summary_metrics.json").read_text()).get("train_loss")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return float(loss) if isinstance(loss, (int, float)) and not isinstance(loss, bool) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


__all__ = ["NAME", "check_cfg", "epoch_files", "group_order", "read", "read_cfg", "sniff", "task_of", "their_group"]
