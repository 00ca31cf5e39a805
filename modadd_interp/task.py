"""The modular-arithmetic task: inputs, labels, the train/test split and float64 losses.

Grid order: input index ``i = a * p + b``; reshaping a per-input tensor to
``(p, p, ...)`` gives ``[a, b, ...]``. Every input is the token sequence
``(a, b, '=')`` with ``'='`` encoded as token ``p``.

Examples:
    >>> task = ModularTask(p=7, frac_train=0.3, seed=0)
    >>> task.inputs.shape, int(task.labels[3 * 7 + 5])
    (torch.Size([49, 3]), 1)
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Literal

import torch

from .errors import TaskMismatchError

SplitMethod = Literal["paper", "randperm"]
OPS: dict[str, str] = {"add": "(a + b) mod p", "sub": "(a - b) mod p", "mul": "(a * b) mod p"}
SUPPORTED_OPS = ("add",)
SPLIT_METHODS = ("paper", "randperm")


@dataclasses.dataclass(frozen=True)
class ModularTask:
    """The task ``c = a op b mod p`` over the full grid of ``p * p`` inputs.

    Tensors it returns are cached and shared: treat them as read-only.

    Args:
        p: the modulus, any integer >= 2.
        op: ``"add"`` (``"sub"`` and ``"mul"`` are reserved names, not yet supported).
        frac_train: fraction of the grid in the training split, in (0, 1].
        seed: the data seed of the split.
        split: ``"paper"`` reproduces the grokking paper's
            ``random.seed(seed); random.shuffle(pairs)`` over row-major ``(i, j, p)``
            triples; ``"randperm"`` reproduces the TransformerLens demo's
            ``torch.manual_seed(seed); torch.randperm(p * p)``.
    """

    p: int
    op: str = "add"
    frac_train: float = 0.3
    seed: int = 0
    split: str = "paper"

    def __post_init__(self) -> None:
        if isinstance(self.p, bool) or not isinstance(self.p, int) or self.p < 2:
            raise TaskMismatchError(f"p must be an integer >= 2, got {self.p!r}.")
        if self.op not in SUPPORTED_OPS:
            known = ", ".join(SUPPORTED_OPS)
            raise TaskMismatchError(
                f"op {self.op!r} is not supported; supported ops: {known}."
            )
        if not (0.0 < float(self.frac_train) <= 1.0):
            raise TaskMismatchError(f"frac_train must be in (0, 1], got {self.frac_train!r}.")
        if self.split not in SPLIT_METHODS:
            raise TaskMismatchError(
                f"split {self.split!r} is unknown; use one of {', '.join(SPLIT_METHODS)}."
            )

    # ----------------------------------------------------------------- grid
    @property
    def n_inputs(self) -> int:
        """Number of inputs in the full grid, ``p * p``."""
        return self.p * self.p

    @property
    def eq_token(self) -> int:
        """The token id of ``'='`` (``p``)."""
        return self.p

    @functools.cached_property
    def inputs(self) -> torch.Tensor:
        """``[p*p, 3]`` int64 tokens ``(a, b, '=')`` in grid order ``i = a*p + b``."""
        a = torch.arange(self.p).repeat_interleave(self.p)
        b = torch.arange(self.p).repeat(self.p)
        eq = torch.full_like(a, self.eq_token)
        return torch.stack([a, b, eq], dim=1)

    @functools.cached_property
    def labels(self) -> torch.Tensor:
        """``[p*p]`` int64 answers ``(a op b) mod p`` in grid order."""
        a, b = self.inputs[:, 0], self.inputs[:, 1]
        return (a + b) % self.p

    # ---------------------------------------------------------------- split
    @functools.cached_property
    def train_indices(self) -> torch.Tensor:
        """Grid indices of the training split, in the order the split drew them."""
        n_train = int(self.frac_train * self.n_inputs)
        return self._split_order()[:n_train]

    @functools.cached_property
    def train_mask(self) -> torch.Tensor:
        """``[p*p]`` bool, True on training inputs."""
        mask = torch.zeros(self.n_inputs, dtype=torch.bool)
        mask[self.train_indices] = True
        return mask

    @property
    def test_mask(self) -> torch.Tensor:
        """``[p*p]`` bool, True on held-out inputs."""
        return ~self.train_mask

    def _split_order(self) -> torch.Tensor:
        p = self.p
        if self.split == "paper":
            pairs = [(i, j, p) for i in range(p) for j in range(p)]
            rng_state = random.getstate()
            try:
                random.seed(self.seed)
                random.shuffle(pairs)
            finally:
                random.setstate(rng_state)
            return torch.tensor([i * p + j for i, j, _ in pairs], dtype=torch.long)
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(p * p, generator=generator)

    # --------------------------------------------------------------- losses
    def loss(self, logits: torch.Tensor, subset: str = "all") -> float:
        """Mean float64 cross-entropy of full-grid logits on ``subset``.

        Args:
            logits: ``[p*p, d_vocab_out]`` final-position logits, or ``[p*p, n_ctx, d_vocab_out]``
                (the last position is used). An ``'='`` output column is dropped.
            subset: ``"train"``, ``"test"`` or ``"all"``.
        """
        logprobs = self.final_logprobs(logits)
        mask = self.mask(subset)
        picked = logprobs[mask].gather(1, self.labels[mask, None])
        return float(-picked.mean())

    def accuracy(self, logits: torch.Tensor, subset: str = "all") -> float:
        """Fraction of ``subset`` whose argmax answer is correct."""
        answer_logits = self.final_logits(logits)
        mask = self.mask(subset)
        return float((answer_logits[mask].argmax(-1) == self.labels[mask]).double().mean())

    def mask(self, subset: str) -> torch.Tensor:
        """``[p*p]`` bool mask of ``"train"``, ``"test"`` or ``"all"``."""
        if subset == "train":
            return self.train_mask
        if subset == "test":
            return self.test_mask
        if subset == "all":
            return torch.ones(self.n_inputs, dtype=torch.bool)
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}")

    def final_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 answer logits: the last position, the '=' column dropped."""
        if logits.ndim == 3:
            logits = logits[:, -1, :]
        if logits.shape[-1] not in (self.p, self.p + 1):
            raise TaskMismatchError(
                f"the model outputs {logits.shape[-1]} logits but p = {self.p} needs {self.p} "
                f"(or {self.p + 1} with an '=' output); pass the p the model was trained on."
            )
        return logits[:, : self.p].to(torch.float64)

    def final_logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 log-probabilities over the answers."""
        return self.final_logits(logits).log_softmax(-1)

    def to_dict(self) -> dict:
        """JSON-safe description of the task."""
        return dataclasses.asdict(self)
