"""Interventions as context managers on TransformerLens hooks.

Each one attaches hooks for the duration of a ``with`` block and removes them on exit,
even on error; none changes a weight. They compose by nesting.

Every intervention writes only to *output* hook points (``hook_embed``, ``attn.hook_z``,
``hook_attn_out``, ``mlp.hook_post``, ``hook_mlp_out``), whose edits propagate the same way
on a TL 3 ``HookedTransformer`` and a TL 4 bridge. Residual-stream hooks do not: on the
bridge, an edit at ``hook_resid_mid`` reaches the MLP input but not the residual sum.
Skip-path ablations are therefore written as edits of the attention/MLP outputs.

Examples:
    >>> with ablate_heads(model, [0, 2]):                       # doctest: +SKIP
    ...     logits = grid_logits(model, task)
    >>> with project(model, NEURONS, directions, complement=True):   # doctest: +SKIP
    ...     logits = grid_logits(model, task)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from .. import tl_adapter
from ..errors import ModAddError
from ..fourier import fourier_basis, freq_rows

EMBED = "hook_embed"
Z = "blocks.0.attn.hook_z"
ATTN_OUT = "blocks.0.hook_attn_out"
RESID_PRE = "blocks.0.hook_resid_pre"
RESID_MID = "blocks.0.hook_resid_mid"
NEURONS = "blocks.0.mlp.hook_post"
MLP_OUT = "blocks.0.hook_mlp_out"
MODES = ("zero", "mean", "resample")


def _check_mode(mode: str, mean: torch.Tensor | None) -> None:
    if mode not in MODES:
        raise ModAddError(f"ablation mode must be one of {MODES}, got {mode!r}.")
    if mode == "mean" and mean is None:
        raise ModAddError("mean ablation needs `mean`: the activation's mean over the grid "
                          "(see modadd_interp.causal.activation_means).")


def _replacement(act: torch.Tensor, mode: str, mean: torch.Tensor | None, generator: torch.Generator):
    if mode == "zero":
        return torch.zeros_like(act)
    if mode == "mean":
        return mean.to(act.dtype).expand_as(act)
    perm = torch.randperm(act.shape[0], generator=generator)
    return act[perm]


def _ablation_hook(index: tuple, mode: str, mean: torch.Tensor | None, seed: int):
    _check_mode(mode, mean)
    generator = torch.Generator().manual_seed(seed)

    def hook(act: torch.Tensor) -> torch.Tensor:
        new = _replacement(act, mode, mean, generator)
        out = act.clone()
        out[(slice(None), *index)] = new[(slice(None), *index)]
        return out

    return hook


@contextlib.contextmanager
def ablate_heads(model, heads: Sequence[int], mode: str = "zero", mean: torch.Tensor | None = None,
                 seed: int = 0) -> Iterator[None]:
    """Ablate the output (``hook_z``) of the given heads at every position.

    Args:
        heads: head indices.
        mode: ``"zero"``, ``"mean"`` (needs ``mean``: ``[n_ctx, n_heads, d_head]``) or
            ``"resample"`` (each input takes another input's activation; seeded).
    """
    with tl_adapter.hooked(model, [(Z, _ablation_hook((slice(None), list(heads)), mode, mean, seed))]):
        yield


@contextlib.contextmanager
def ablate_neurons(model, neurons: Sequence[int], mode: str = "zero", mean: torch.Tensor | None = None,
                   seed: int = 0) -> Iterator[None]:
    """Ablate MLP neurons (``mlp.hook_post``) at every position; ``mean`` is ``[n_ctx, d_mlp]``."""
    with tl_adapter.hooked(model, [(NEURONS, _ablation_hook((slice(None), list(neurons)), mode, mean, seed))]):
        yield


@contextlib.contextmanager
def ablate_mlp(model, mode: str = "zero", mean: torch.Tensor | None = None, seed: int = 0) -> Iterator[None]:
    """Ablate the MLP's output (``hook_mlp_out``); ``mean`` is ``[n_ctx, d_model]``."""
    with tl_adapter.hooked(model, [(MLP_OUT, _ablation_hook((), mode, mean, seed))]):
        yield


@contextlib.contextmanager
def ablate_skip(model, path: str, mode: str = "zero", mean: torch.Tensor | None = None,
                seed: int = 0) -> Iterator[None]:
    """Ablate the residual skip around the attention (``path="attn"``) or the MLP (``"mlp"``).

    The attention skip is the ``resid_pre`` term of ``resid_mid = resid_pre + attn_out``;
    the MLP skip is the ``resid_mid`` term of ``resid_post = resid_mid + mlp_out``. The
    skipped term is replaced (zero, its grid mean ``[n_ctx, d_model]``, or resampled), by
    editing the attention / MLP output so that the change reaches everything downstream.
    """
    if path not in ("attn", "mlp"):
        raise ModAddError(f"path must be 'attn' or 'mlp', got {path!r}.")
    _check_mode(mode, mean)
    generator = torch.Generator().manual_seed(seed)
    source, target = (RESID_PRE, ATTN_OUT) if path == "attn" else (RESID_MID, MLP_OUT)
    seen: dict[str, torch.Tensor] = {}

    def record(act: torch.Tensor) -> None:
        seen["skip"] = act.detach().clone()

    def replace(act: torch.Tensor) -> torch.Tensor:
        skip = seen["skip"]
        return act - skip + _replacement(skip, mode, mean, generator)

    with tl_adapter.hooked(model, [(source, record), (target, replace)]):
        yield


@contextlib.contextmanager
def project(model, hook_name: str, directions: torch.Tensor, complement: bool = False,
            position: int | None = -1) -> Iterator[None]:
    """Project an activation onto the span of ``directions`` (or its orthogonal complement).

    Args:
        hook_name: e.g. ``"blocks.0.mlp.hook_post"``.
        directions: ``[d, m]`` columns spanning the subspace of the activation's last dim.
        complement: project onto the orthogonal complement instead.
        position: the sequence position to project (default the final '='), or None for all.
    """
    q, _ = torch.linalg.qr(directions.double())
    proj = q @ q.T

    def hook(act: torch.Tensor) -> torch.Tensor:
        out = act.clone()
        sl = (slice(None), position) if position is not None else (slice(None),)
        kept = (act[sl].double() @ proj).to(act.dtype)
        out[sl] = act[sl] - kept if complement else kept
        return out

    with tl_adapter.hooked(model, [(hook_name, hook)]):
        yield


@contextlib.contextmanager
def remove_embedding_frequencies(model, freqs: Sequence[int], p: int) -> Iterator[None]:
    """Remove frequencies from the number tokens' embedding (as seen by the rest of the model).

    The embedding of token ``x < p`` becomes ``W_E'[x]`` with ``W_E' = W_E - B_k^T B_k W_E``
    over the numbers, for the basis rows ``B_k`` of each frequency. The hook recognises
    each position's token from its embedding row (an exact lookup), so it needs no tokens.
    """
    w_e = tl_adapter.canonical_weights(model)["embed.W_E"].double()
    basis = fourier_basis(p)
    rows = [r for k in freqs for r in freq_rows(p, k)]
    numbers = w_e[:p]
    edited = w_e.clone()
    edited[:p] = numbers - basis[rows].T @ (basis[rows] @ numbers)

    def hook(act: torch.Tensor) -> torch.Tensor:
        tokens = torch.cdist(act.double().flatten(0, 1), w_e).argmin(-1)
        return edited[tokens].reshape(act.shape).to(act.dtype)

    with tl_adapter.hooked(model, [(EMBED, hook)]):
        yield


@contextlib.contextmanager
def replace_activations(model, hook_name: str, values: torch.Tensor, position: int = -1) -> Iterator[None]:
    """Replace an activation at ``position`` with precomputed per-input ``values``.

    ``values`` is ``[n_inputs, *act_shape]`` in the order inputs are run; successive
    forward passes (chunks of the grid) consume successive rows.
    """
    cursor = {"row": 0}

    def hook(act: torch.Tensor) -> torch.Tensor:
        start = cursor["row"]
        cursor["row"] = start + act.shape[0]
        out = act.clone()
        out[:, position] = values[start : start + act.shape[0]].to(act.dtype)
        return out

    with tl_adapter.hooked(model, [(hook_name, hook)]):
        yield
