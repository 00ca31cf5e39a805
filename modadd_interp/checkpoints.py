"""Read any supported checkpoint into canonical weights: the public readers over the format registry.

The formats (see docs/formats.md and :mod:`modadd_interp.formats`), tried in this order:
    1. a run directory from :func:`~modadd_interp.train` (:mod:`~modadd_interp.formats.run_dir`);
    2. ours: safetensors with canonical keys (optionally under ``model.``) and our JSON metadata
       (architecture + task) in the header, one model or a series (:mod:`~modadd_interp.formats.ours`);
    3. the Clock-and-Pizza format: ``model_<id>.pt`` (the paper's layout) with ``config_<id>.json``
       beside it (:mod:`~modadd_interp.formats.clock_and_pizza`);
    4. the progress-measures paper: ``embed.W_E`` is ``[d_model, d_vocab]``, bare, under
       ``"model"``, or a series under ``"state_dicts"`` (:mod:`~modadd_interp.formats.paper`);
    5. a TransformerLens 4 ``TransformerBridge`` (``boot_native``) state dict (:mod:`~modadd_interp.formats.bridge`);
    6. a TransformerLens <= 3 ``HookedTransformer.state_dict()``, the canonical layout
       (:mod:`~modadd_interp.formats.hooked_transformer`).

The family read is every attention + MLP transformer without LayerNorm: 1 to 4 (or more) blocks, ReLU or
GeLU, any attention rate, (a, b, '=') or (a, b) inputs. Torch files load only with ``weights_only=True``;
anything that needs arbitrary unpickling is refused before any of it runs. Every failure is a
:class:`~modadd_interp.errors.ModAddError` whose message names the problem. What a format does not record
(a state dict's activation, attention rate, ...) is assumed and said: a warning, once per call, whose text is
also in :attr:`Checkpoint.notes`; ``config=`` gives it instead.

Examples:
    >>> from modadd_interp.loading import data_path
    >>> ckpt = read_checkpoint(data_path("grokked_p113.safetensors"))   # the shipped model's file
    >>> ckpt.format, ckpt.config.d_model, ckpt.task.p, ckpt.task.op, ckpt.step
    ('modadd_interp', 128, 113, 'add', 9000)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from .errors import CheckpointError
from .formats import registry
from .formats.bridge import DEFAULT_N_HEADS
from .formats.checkpoint import Checkpoint, Series
from .formats.paper import read_series
from .formats.source import Source

__all__ = ["DEFAULT_N_HEADS", "Checkpoint", "from_object", "from_state_dict", "read_checkpoint",
           "read_paper_series"]


def read_checkpoint(source: str | Path, n_heads: int | None = None, config: object = None) -> Checkpoint:
    """Read the final model of any supported file or run directory.

    Args:
        source: a ``.safetensors`` or torch file, or a run directory from :func:`train`.
        n_heads: the head count, needed only for a bare bridge state dict (default 4, with a notice);
            for other formats, a mismatch with the file raises.
        config: :class:`~modadd_interp.config.ModelConfig` fields (a dict, or a ModelConfig) for what the file does
            not record (``{"attn_rate": 0.0, "attention_dir": "bidirectional"}``); one that contradicts the file
            raises.

    Returns:
        The :class:`Checkpoint`; each assumption is warned once and kept in ``notes``.

    Raises:
        CheckpointError: the path is missing, empty, truncated or not a checkpoint.
        UnsafeCheckpointError: the file needs arbitrary unpickling.
        InvalidWeightsError: keys are missing or extra, shapes disagree, or NaN/inf.
        ArchitectureError: the model is not a LayerNorm-free attention + MLP (ReLU or GeLU) transformer, or
            ``n_heads``/``config`` contradicts the file.
        TaskMismatchError: the task the file records does not fit its weights.
    """
    options = registry.check_options(n_heads, config)
    src = Source.of_path(source)
    return _said(registry.finish(registry.read_final(src, options), src, options))


def from_object(obj: object, n_heads: int | None = None, origin: str = "the object", config: object = None,
                ) -> Checkpoint:
    """The final model of an object loaded from a torch file (state dict, paper dict or series) or built in memory.

    ``origin`` names the object in messages; ``n_heads`` and ``config`` as for :func:`read_checkpoint`.
    """
    options = registry.check_options(n_heads, config)
    src = Source.of_object(obj, origin)
    return _said(registry.finish(registry.read_final(src, options), src, options))


def from_state_dict(state: Mapping, n_heads: int | None = None, config: object = None) -> Checkpoint:
    """Recognise a state dict's format by its keys and shapes and convert it to canonical weights.

    A state dict records no activation, attention rate, attention direction or token layout (nor, in the bridge's
    layout, its head count): what it does not record is assumed (ReLU, rate 1, causal, ``(a, b, '=')`` with 3
    positions, 4 heads) and said in one warning, unless ``config=`` (and ``n_heads=``) gives it.

    Examples:
        >>> from modadd_interp.loading import data_path
        >>> state = read_checkpoint(data_path("grokked_p113.safetensors")).weights   # a HookedTransformer layout
        >>> said = {"attn_rate": 1.0, "act_fn": "relu", "attention_dir": "causal", "has_eq": True,
        ...         "separate_b_tokens": False}             # what the state dict does not record: no warning
        >>> ckpt = from_state_dict(state, config=said)
        >>> ckpt.format, ckpt.config.p, ckpt.config.n_heads, ckpt.notes
        ('hooked_transformer', 113, 4, ())
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got a {type(state).__name__}.")
    return from_object(state, n_heads, "this state dict", config)


def read_paper_series(obj: Mapping, n_heads: int | None = None, config: object = None) -> list[Checkpoint]:
    """The checkpoints of a paper-style series dict (``state_dicts``, ``epochs``, ...), oldest first.

    Raises:
        CheckpointError: ``state_dicts`` is not a non-empty list, or ``epochs`` does not match it.
        TaskMismatchError: the state dicts are for different moduli p.
        ArchitectureError: the state dicts have different architectures.
    """
    options = registry.check_options(n_heads, config)
    src = Source.of_object(obj, "the series")
    series = registry.finish(Series(tuple(read_series(obj, options))), src, options)
    for note in registry.notes_of(series):
        warnings.warn(note, stacklevel=2)
    return list(series.checkpoints)


def _said(ckpt: Checkpoint) -> Checkpoint:
    for note in ckpt.notes:
        warnings.warn(note, stacklevel=3)
    return ckpt
