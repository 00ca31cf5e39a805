"""The task read from the model itself, when a checkpoint does not record it.

* **The operation** (:func:`infer_op`): the model is run once over the full ``(a, b)`` grid and its
  argmax answers are compared with every operation's; the one it agrees with on at least
  :data:`OP_AGREEMENT` of the inputs where that operation is defined is taken, and the notice says how
  sure (its agreement and the runner-up's). No operation that good: a clear error naming the best.
* **The split** (:func:`infer_split`): a file whose own training loop recorded its final training loss
  (the progress-measures paper's ``train_losses``) is matched against the candidate splits
  (:data:`SPLIT_SEEDS` seeds of both split methods at the recorded, else the paper's, training
  fraction): a candidate is taken when its training loss is within :data:`SPLIT_MATCH` of the recorded
  one and every other candidate is at least :data:`SPLIT_MARGIN` times farther off (in log ratio).
  Otherwise the split stays unknown and only full-grid figures are reported.

Examples:
    >>> result = infer_op(model, config)            # doctest: +SKIP
    >>> result.op, result.notice("model.pt")
    ('sub', "model.pt: op inferred: 'sub' ((a - b) mod p) on 100.0% of the grid; next best 'add' 1.7%")
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .config import ModelConfig
from .errors import TaskMismatchError
from .operations import OPERATIONS, is_prime
from .task import ModularTask

OP_AGREEMENT = 0.99
"""An operation is read from a model that gives its answer on >= 99% of the inputs where it is defined."""

SPLIT_SEEDS = range(10)
SPLIT_MATCH = math.log(1.25)
"""A candidate split's training loss must be within a factor 1.25 of the recorded one (the recorded value is
from the training loop: float32 in the paper's code, and one optimizer step apart). Measured on the paper's
checkpoints: the right seed is within 0.8% (no_wd) and 2.5% (low_precision); the next best is 15x and 4.0x off."""

SPLIT_MARGIN = 3.0
"""...and every other candidate at least 3x farther off in log ratio."""

CHUNK = 8192


@dataclasses.dataclass(frozen=True)
class OpInference:
    """Agreement of a model's answers with each operation.

    Attributes:
        op: the operation read from the model, or None when none reaches :data:`OP_AGREEMENT`.
        agreement: ``{op: fraction of the defined inputs answered as op}`` for every candidate.
    """

    op: str | None
    agreement: dict[str, float]

    def notice(self, origin: str) -> str:
        """One line: which operation and how sure."""
        ranked = sorted(self.agreement.items(), key=lambda kv: -kv[1])
        runner = f"; next best {ranked[1][0]!r} {ranked[1][1]:.1%}" if len(ranked) > 1 else ""
        best = ranked[0]
        return (f"{origin} does not record its operation; op inferred: {best[0]!r} ({OPERATIONS[best[0]].formula}) "
                f"answers {best[1]:.1%} of the grid{runner}. Pass --op / op= to set it.")


def infer_op(model, config: ModelConfig) -> OpInference:
    """Which operation ``model`` computes (see the module docstring)."""
    p = config.p
    answers = _answers(model, config)
    pairs = ModularTask(p=p).pairs
    agreement = {}
    for name, op in OPERATIONS.items():
        if op.multiplicative and not is_prime(p):
            continue
        labels = op.answer(pairs[:, 0], pairs[:, 1], p)
        defined = labels >= 0
        agreement[name] = float((answers[defined] == labels[defined]).double().mean())
    best = max(agreement, key=agreement.get)
    return OpInference(best if agreement[best] >= OP_AGREEMENT else None, agreement)


def require_op(result: OpInference, origin: str) -> str:
    """``result.op``, or a clear error naming the best agreement."""
    if result.op is None:
        ranked = ", ".join(f"{k} {v:.1%}" for k, v in sorted(result.agreement.items(), key=lambda kv: -kv[1]))
        raise TaskMismatchError(
            f"{origin} does not record its operation, and the model computes none of them on >= {OP_AGREEMENT:.0%} "
            f"of the grid (agreement: {ranked}). It may be untrained or memorizing; pass op= / --op to analyse it "
            "anyway (a Clock-and-Pizza model also needs its config_<id>.json beside it)."
        )
    return result.op


@torch.no_grad()
def _answers(model, config: ModelConfig) -> torch.Tensor:
    p = config.p
    pairs = ModularTask(p=p).pairs
    out = [model(config.encode(pairs[s : s + CHUNK]))[:, -1, :p].argmax(-1) for s in range(0, p * p, CHUNK)]
    return torch.cat(out)


@dataclasses.dataclass(frozen=True)
class SplitInference:
    """The candidate splits' training losses against the recorded one.

    Attributes:
        task: the matching task (``split_source="inferred"``), or None.
        recorded: the recorded final training loss.
        candidates: ``{(split, seed): training loss}`` of every candidate.
    """

    task: ModularTask | None
    recorded: float
    candidates: dict[tuple[str, int], float]

    def notice(self, origin: str) -> str:
        """One line: which split and how sure, or why none."""
        ranked = sorted(self.candidates.items(), key=lambda kv: _distance(kv[1], self.recorded))
        (best, loss), (second, loss2) = ranked[0], ranked[1]
        if self.task is None:
            return (f"{origin} does not record its train/test split, and no candidate split (seeds "
                    f"{SPLIT_SEEDS.start}-{SPLIT_SEEDS.stop - 1}, paper and randperm) reproduces its recorded training "
                    f"loss {self.recorded:.4g} (closest: {best[0]} seed {best[1]}, {loss:.4g}); train/test losses "
                    "are unavailable. Pass --frac-train/--seed/--split to set it.")
        return (f"{origin} does not record its split; split inferred: {best[0]} seed {best[1]} "
                f"(frac_train {self.task.frac_train:g}) gives training loss {loss:.4g} against the recorded "
                f"{self.recorded:.4g}; next best {second[0]} seed {second[1]}: {loss2:.4g}. "
                "Pass --seed/--split to set it.")


def infer_split(model, config: ModelConfig, task: ModularTask, recorded_train_loss: float) -> SplitInference:
    """The split whose training loss matches ``recorded_train_loss`` (see the module docstring).

    Args:
        task: the task (its ``op``; its ``frac_train`` is the fraction tried).
    """
    p = config.p
    pairs, labels = task.pairs, task.labels
    nll = torch.zeros(task.n_inputs, dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, p * p, CHUNK):
            logits = model(config.encode(pairs[s : s + CHUNK]))[:, -1, :p].double()
            lab = labels[s : s + CHUNK].clamp_min(0)
            nll[s : s + CHUNK] = torch.logsumexp(logits, -1) - logits.gather(1, lab[:, None]).squeeze(1)
    candidates = {}
    for method in ("paper", "randperm"):
        for seed in SPLIT_SEEDS:
            candidate = ModularTask(p=p, op=task.op, frac_train=task.frac_train, seed=seed, split=method)
            candidates[(method, seed)] = float(nll[candidate.train_mask].mean())
    ranked = sorted(candidates.items(), key=lambda kv: _distance(kv[1], recorded_train_loss))
    d0, d1 = (_distance(v, recorded_train_loss) for _, v in ranked[:2])
    found = None
    if d0 <= SPLIT_MATCH and d1 >= SPLIT_MARGIN * max(d0, 1e-3):
        (method, seed), _ = ranked[0]
        found = dataclasses.replace(task, seed=seed, split=method, split_source="inferred")
    return SplitInference(found, recorded_train_loss, candidates)


def _distance(loss: float, recorded: float) -> float:
    return abs(math.log(max(loss, 1e-300) / max(recorded, 1e-300)))
