"""The modular-arithmetic task: inputs, labels, the train/test split and float64 losses.

Grid order: input index ``i = a * p + b``; reshaping a per-input tensor to
``(p, p, ...)`` gives ``[a, b, ...]``. :attr:`ModularTask.pairs` holds ``(a, b)``; a model's own
token layout (``(a, b, '=')``, ``(a, b)``, separate ``b`` tokens) is
:meth:`modadd_interp.config.ModelConfig.encode` of them. :attr:`ModularTask.inputs` is the
progress-measures paper's layout ``(a, b, '=')`` with ``'='`` encoded as token ``p``.

The operation (``add``, ``sub``, ``mul``, ``div``; :mod:`modadd_interp.operations`) gives the labels
and the group coordinates the probes read (:attr:`ModularTask.grid`). Division is undefined at
``b = 0``: those inputs are in no split and in no loss (:attr:`ModularTask.valid_mask`).

Examples:
    >>> task = ModularTask(p=7, frac_train=0.3, seed=0)
    >>> task.inputs.shape, int(task.labels[3 * 7 + 5])
    (torch.Size([49, 3]), 1)
    >>> ModularTask(p=7, op="sub").labels[3 * 7 + 5].item()     # (3 - 5) mod 7
    5
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Literal

import torch

from .errors import TaskMismatchError
from .operations import OPERATIONS, GroupCoordinates, Operation, get_operation
from .readout import accuracy

SplitMethod = Literal["paper", "randperm", "unknown"]
OPS: dict[str, str] = {name: op.formula for name, op in OPERATIONS.items()}
SUPPORTED_OPS = tuple(OPERATIONS)
SPLIT_METHODS = ("paper", "randperm", "unknown")
SOURCES = ("given", "recorded", "inferred", "default")


@dataclasses.dataclass(frozen=True)
class ModularTask:
    """The task ``c = a op b mod p`` over the full grid of ``p * p`` inputs.

    Tensors it returns are cached and shared: treat them as read-only.

    Args:
        p: the modulus, any integer >= 2 (a prime for ``mul``/``div``).
        op: ``"add"``, ``"sub"``, ``"mul"`` or ``"div"`` (see :mod:`modadd_interp.operations`).
        frac_train: fraction of the (defined) grid in the training split, in (0, 1].
        seed: the data seed of the split.
        split: ``"paper"`` reproduces the grokking paper's
            ``random.seed(seed); random.shuffle(pairs)`` over row-major ``(i, j, p)``
            triples; ``"randperm"`` reproduces the TransformerLens demo's
            ``torch.manual_seed(seed); torch.randperm(p * p)``; ``"unknown"``: the split the model
            was trained on is not known, so both "splits" are the whole grid and only full-grid
            figures mean anything (:attr:`split_known` is False).
        op_source, split_source: where ``op`` and the split came from: ``"given"`` (by the caller),
            ``"recorded"`` (in the checkpoint), ``"inferred"`` (from the model's answers) or
            ``"default"``. Provenance only: not compared, not hashed.
    """

    p: int
    op: str = "add"
    frac_train: float = 0.3
    seed: int = 0
    split: str = "paper"
    op_source: str = dataclasses.field(default="given", compare=False)
    split_source: str = dataclasses.field(default="given", compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.p, bool) or not isinstance(self.p, int) or self.p < 2:
            raise TaskMismatchError(f"p must be an integer >= 2, got {self.p!r}.")
        get_operation(self.op).check_modulus(self.p)
        if isinstance(self.frac_train, bool) or not isinstance(self.frac_train, (int, float)) or not (
                0.0 < float(self.frac_train) <= 1.0):
            raise TaskMismatchError(f"frac_train must be in (0, 1], got {self.frac_train!r}.")
        if self.split not in SPLIT_METHODS:
            raise TaskMismatchError(
                f"split {self.split!r} is unknown; use one of {', '.join(SPLIT_METHODS)}."
            )
        for name in ("op_source", "split_source"):
            if getattr(self, name) not in SOURCES:
                raise TaskMismatchError(f"{name} must be one of {SOURCES}, got {getattr(self, name)!r}.")

    @property
    def operation(self) -> Operation:
        """The :class:`~modadd_interp.operations.Operation` object of ``op``."""
        return get_operation(self.op)

    @property
    def split_known(self) -> bool:
        """False when the split the model was trained on is unknown (``split="unknown"``)."""
        return self.split != "unknown"

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
    def pairs(self) -> torch.Tensor:
        """``[p*p, 2]`` int64 operands ``(a, b)`` in grid order ``i = a*p + b``."""
        a = torch.arange(self.p).repeat_interleave(self.p)
        b = torch.arange(self.p).repeat(self.p)
        return torch.stack([a, b], dim=1)

    @functools.cached_property
    def inputs(self) -> torch.Tensor:
        """``[p*p, 3]`` int64 tokens ``(a, b, '=')`` in grid order: the progress-measures paper's layout."""
        return torch.cat([self.pairs, torch.full((self.n_inputs, 1), self.eq_token)], dim=1)

    @functools.cached_property
    def labels(self) -> torch.Tensor:
        """``[p*p]`` int64 answers ``(a op b) mod p`` in grid order; ``-1`` where undefined (``b = 0`` for div)."""
        return self.operation.answer(self.pairs[:, 0], self.pairs[:, 1], self.p)

    @functools.cached_property
    def valid_mask(self) -> torch.Tensor:
        """``[p*p]`` bool: the inputs where the operation is defined (all but ``b = 0`` for div)."""
        return self.labels >= 0

    @functools.cached_property
    def coords(self) -> GroupCoordinates:
        """The operation's group coordinates (:mod:`modadd_interp.operations`)."""
        return self.operation.coordinates(self.p)

    @property
    def group(self):
        """The group the operation composes in, in coordinates (:class:`~modadd_interp.groups.Group`: ``C{p}`` for
        add/sub, ``C{p-1}`` through the discrete log for mul/div, the group itself for a group's composition)."""
        return self.coords.group

    @functools.cached_property
    def grid(self) -> AnalysisGrid:
        """The task in its group coordinates: the grid every probe reads (see :class:`AnalysisGrid`)."""
        return AnalysisGrid(self)

    # ---------------------------------------------------------------- split
    @functools.cached_property
    def train_indices(self) -> torch.Tensor:
        """Grid indices of the training split, in the order the split drew them (every defined input
        when the split is unknown)."""
        if not self.split_known:
            return torch.nonzero(self.valid_mask).flatten()
        order = self._split_order()
        n_train = int(self.frac_train * len(order))
        return order[:n_train]

    @functools.cached_property
    def train_mask(self) -> torch.Tensor:
        """``[p*p]`` bool, True on training inputs (every defined input when the split is unknown)."""
        mask = torch.zeros(self.n_inputs, dtype=torch.bool)
        mask[self.train_indices] = True
        return mask

    @functools.cached_property
    def test_mask(self) -> torch.Tensor:
        """``[p*p]`` bool, True on held-out inputs (every defined input when the split is unknown)."""
        return self.valid_mask.clone() if not self.split_known else self.valid_mask & ~self.train_mask

    def _split_order(self) -> torch.Tensor:
        """The defined inputs in the order the split draws them (all inputs for add/sub/mul)."""
        p = self.p
        if self.split == "paper":
            pairs = [(i, j, p) for i in range(p) for j in range(p) if self.valid_mask[i * p + j]]
            rng_state = random.getstate()
            try:
                random.seed(self.seed)
                random.shuffle(pairs)
            finally:
                random.setstate(rng_state)
            return torch.tensor([i * p + j for i, j, _ in pairs], dtype=torch.long)
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(p * p, generator=generator)
        return order[self.valid_mask[order]]

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
        """Fraction of ``subset`` whose label's logit is strictly the largest (:func:`.readout.accuracy`)."""
        mask = self.mask(subset)
        return accuracy(self.final_logits(logits)[mask], self.labels[mask])

    def mask(self, subset: str) -> torch.Tensor:
        """``[p*p]`` bool mask of ``"train"``, ``"test"`` or ``"all"`` (the defined inputs)."""
        if subset == "train":
            return self.train_mask
        if subset == "test":
            return self.test_mask
        if subset == "all":
            return self.valid_mask
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}")

    def final_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 answer logits: the last position, the answers ``0..p-1`` (an '=' or other
        extra output column is dropped)."""
        if logits.ndim == 3:
            logits = logits[:, -1, :]
        if logits.shape[-1] < self.p:
            raise TaskMismatchError(
                f"the model outputs {logits.shape[-1]} logits but p = {self.p} needs at least {self.p}; "
                "pass the p the model was trained on."
            )
        return logits[:, : self.p].to(torch.float64)

    def final_logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 log-probabilities over the answers."""
        return self.final_logits(logits).log_softmax(-1)

    def to_dict(self) -> dict:
        """JSON-safe description of the task (provenance excluded; see :meth:`provenance`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}

    def provenance(self) -> dict:
        """``{"op_source": ..., "split_source": ...}``: where the op and the split came from."""
        return {"op_source": self.op_source, "split_source": self.split_source}

    def describe(self) -> str:
        """One line: the operation, p and the split."""
        split = (f"{self.split} split, frac_train {self.frac_train:g}, seed {self.seed}" if self.split_known
                 else "split unknown")
        return f"{self.operation.formula.replace('p', str(self.p))} ({split})"


@dataclasses.dataclass(frozen=True, eq=False)
class AnalysisGrid:
    """A task's inputs in its operation's group coordinates ``(x, y)``, where the answer is ``z = x + y mod n``.

    For ``add`` this is the token grid itself. For ``sub`` the columns are ``b = -y``; for ``mul``/``div``
    rows and columns are discrete logs, and the inputs with a zero operand are outside the grid
    (:attr:`outside_index`). Input ``j = x * n + y``; reshaping to ``(n, n, ...)`` gives ``[x, y, ...]``.

    Answer logits are read in :attr:`answer_order` (``coords.answer_order``): column ``z < n`` is the
    answer at coordinate ``z``, the columns after ``n`` the answers outside the group; so the label of
    input ``j`` is the column ``labels[j] = (x + y) % n`` and the softmax keeps every answer.

    Attributes:
        task: the task.
        coords: its :class:`~modadd_interp.operations.GroupCoordinates`.
        n: the group's order.
        pairs: ``[n*n, 2]`` operands ``(a, b)`` of each grid input.
        token_index: ``[n*n]`` each input's index ``a * p + b`` in the task's token grid.
        labels: ``[n*n]`` answer columns ``x ∘ y``: ``(x + y) % n`` for the modular operations.
        train, test: ``[n*n]`` the task's split on the grid.
        outside_index: ``[m]`` token-grid indices of the defined inputs outside the group.
        outside_labels: ``[m]`` their answer columns in :attr:`answer_order`.
    """

    task: ModularTask

    @property
    def coords(self) -> GroupCoordinates:
        return self.task.coords

    @property
    def n(self) -> int:
        return self.coords.n

    @property
    def n_inputs(self) -> int:
        return self.n * self.n

    @property
    def answer_order(self) -> torch.Tensor:
        return self.coords.answer_order

    @functools.cached_property
    def xy(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``([n*n], [n*n])`` the coordinates ``x`` and ``y`` of every grid input."""
        return torch.arange(self.n).repeat_interleave(self.n), torch.arange(self.n).repeat(self.n)

    @functools.cached_property
    def pairs(self) -> torch.Tensor:
        x, y = self.xy
        return torch.stack([self.coords.a_tokens[x], self.coords.b_tokens[y]], dim=1)

    @functools.cached_property
    def token_index(self) -> torch.Tensor:
        return self.pairs[:, 0] * self.task.p + self.pairs[:, 1]

    @functools.cached_property
    def labels(self) -> torch.Tensor:
        x, y = self.xy
        return self.coords.compose(x, y)

    @property
    def group(self):
        """The coordinates' :class:`~modadd_interp.groups.Group` (``C{n}`` for the four modular operations)."""
        return self.coords.group

    @functools.cached_property
    def train(self) -> torch.Tensor:
        return self.task.train_mask[self.token_index]

    @functools.cached_property
    def test(self) -> torch.Tensor:
        return self.task.test_mask[self.token_index]

    @functools.cached_property
    def outside_index(self) -> torch.Tensor:
        inside = torch.zeros(self.task.n_inputs, dtype=torch.bool)
        inside[self.token_index] = True
        return torch.nonzero(self.task.valid_mask & ~inside).flatten()

    @functools.cached_property
    def outside_labels(self) -> torch.Tensor:
        column = torch.empty(self.task.p, dtype=torch.long)
        column[self.answer_order] = torch.arange(self.task.p)
        return column[self.task.labels[self.outside_index]]

    def answer_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64: the task's answer logits (:meth:`ModularTask.final_logits`) in :attr:`answer_order`."""
        return self.task.final_logits(logits)[:, self.answer_order]

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """``[stop - start]`` the rows ``x`` of the inputs ``start..stop`` (whole rows)."""
        return torch.arange(start // self.n, stop // self.n)
