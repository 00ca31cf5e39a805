"""Interventions as context managers on TransformerLens hooks.

Each one attaches hooks for the duration of a ``with`` block and removes them on exit,
even on error; none changes a weight. They compose by nesting.

Every intervention writes only to *output* hook points (``hook_embed``, ``attn.hook_z``,
``hook_attn_out``, ``mlp.hook_post``, ``hook_mlp_out``), whose edits propagate the same way
on a TL 3 ``HookedTransformer`` and a TL 4 bridge. Residual-stream hooks do not: on the
bridge, an edit at ``hook_resid_mid`` reaches the MLP input but not the residual sum.
Skip-path ablations are therefore written as edits of the attention/MLP outputs.

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp.causal import measure
    >>> model, task = mi.load()
    >>> with ablate_heads(model, [0, 2]):
    ...     ablated = measure(model, task)
    >>> ablated.test_accuracy                               # 1.0 with every head
    0.31
    >>> directions = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))   # [d_mlp, 8]
    >>> with project(model, NEURONS, directions, complement=True):
    ...     projected = measure(model, task)                # 8 random neuron directions removed: no harm
    >>> projected.test_accuracy
    1.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from .. import tl_adapter
from ..errors import ModAddError
from ..fourier import fourier_basis, freq_rows
from ..hook_names import EMBED, hook_name

MODES = ("zero", "mean", "resample")

Z, ATTN_OUT, RESID_PRE, RESID_MID, NEURONS, MLP_OUT = (
    hook_name(k) for k in ("z", "attn_out", "resid_pre", "resid_mid", "post", "mlp_out"))


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
                 seed: int = 0, layer: int = 0) -> Iterator[None]:
    """Ablate the output (``hook_z``) of the given heads of ``layer`` at every position.

    Args:
        heads: head indices.
        mode: ``"zero"``, ``"mean"`` (needs ``mean``: ``[n_ctx, n_heads, d_head]``) or
            ``"resample"`` (each input takes another input's activation; seeded).
    """
    hook = _ablation_hook((slice(None), list(heads)), mode, mean, seed)
    with tl_adapter.hooked(model, [(hook_name("z", layer), hook)]):
        yield


@contextlib.contextmanager
def ablate_neurons(model, neurons: Sequence[int], mode: str = "zero", mean: torch.Tensor | None = None,
                   seed: int = 0, layer: int = 0) -> Iterator[None]:
    """Ablate MLP neurons (``mlp.hook_post``) of ``layer`` at every position; ``mean`` is ``[n_ctx, d_mlp]``."""
    hook = _ablation_hook((slice(None), list(neurons)), mode, mean, seed)
    with tl_adapter.hooked(model, [(hook_name("post", layer), hook)]):
        yield


@contextlib.contextmanager
def ablate_mlp(model, mode: str = "zero", mean: torch.Tensor | None = None, seed: int = 0,
               layer: int = 0) -> Iterator[None]:
    """Ablate the output (``hook_mlp_out``) of ``layer``'s MLP; ``mean`` is ``[n_ctx, d_model]``."""
    with tl_adapter.hooked(model, [(hook_name("mlp_out", layer), _ablation_hook((), mode, mean, seed))]):
        yield


@contextlib.contextmanager
def ablate_skip(model, path: str, mode: str = "zero", mean: torch.Tensor | None = None,
                seed: int = 0, layer: int = 0) -> Iterator[None]:
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
    source, target = (("resid_pre", "attn_out") if path == "attn" else ("resid_mid", "mlp_out"))
    source, target = hook_name(source, layer), hook_name(target, layer)
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
def remove_embedding_frequencies(model, freqs: Sequence[int], task) -> Iterator[None]:
    """Remove frequencies from the numbers' embeddings (as seen by the rest of the model), for the block.

    Frequencies are those of the task's group (:class:`modadd_interp.task.AnalysisGrid`): the embeddings
    of the group's numbers, by coordinate ``x``, become ``E' = E - B_k^T B_k E`` for the basis rows ``B_k``
    of each frequency (for ``add``: ``W_E[:p]`` in the Fourier basis over ``a``). Both the ``a`` and, with
    separate tokens, the ``b`` table are edited; tokens outside the group (0 under mul/div) and ``'='``
    are unchanged. The hook (:func:`embedding_frequency_hooks`) recognises each position's token from its
    embedding row (an exact lookup), so it needs no tokens.
    """
    with tl_adapter.hooked(model, embedding_frequency_hooks(model, freqs, task)):
        yield


def embedding_frequency_hooks(model, freqs: Sequence[int], task) -> list:
    """``[("hook_embed", fn)]``: the hook of :func:`remove_embedding_frequencies`, to pass to a pass that takes
    hooks (e.g. :meth:`modadd_interp.probes.GridCache.measure_hooked`)."""
    cfg = tl_adapter.model_config(model)
    w_e = tl_adapter.canonical_weights(model)["embed.W_E"].double()
    coords = task.grid.coords
    basis = fourier_basis(coords.n)
    rows = [r for k in freqs for r in freq_rows(coords.n, k)]
    edited = w_e.clone()
    rows_a, rows_b = cfg.number_rows()
    # b's coordinates are a reflection of a's (sub, div) or the same: one subspace, one edit per table
    tables = [rows_a[coords.a_tokens]] + ([rows_b[coords.b_tokens]] if cfg.separate_b_tokens else [])
    for index in tables:
        numbers = w_e[index]
        edited[index] = numbers - basis[rows].T @ (basis[rows] @ numbers)
    lookup = _RowLookup(w_e)

    def hook(act: torch.Tensor) -> torch.Tensor:
        return edited[lookup(act.flatten(0, 1))].reshape(act.shape).to(act.dtype)

    return [(EMBED, hook)]


class _RowLookup:
    """The index in ``table`` ``[V, d]`` of each row of ``x`` ``[m, d]`` (rows of ``x`` are rows of the table).

    A random projection sorts the table once; each row is found by binary search on its projection and checked
    exactly against the table (``O(m (log V + d))``). Rows the check rejects (ties of the projection, or a row
    that is not in the table) fall back to the nearest row by distance.
    """

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table.double()
        self.direction = torch.randn(table.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        projected = self.table @ self.direction
        self.sorted, self.order = projected.sort()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        key = x @ self.direction
        at = torch.searchsorted(self.sorted, key).clamp(max=len(self.sorted) - 1)
        below = (at - 1).clamp(min=0)
        nearer = (self.sorted[below] - key).abs() < (self.sorted[at] - key).abs()
        index = self.order[torch.where(nearer, below, at)]
        wrong = (self.table[index] != x).any(-1)
        if wrong.any():
            index[wrong] = torch.cdist(x[wrong], self.table).argmin(-1)
        return index


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
