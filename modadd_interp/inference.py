"""The task read from the model itself, when a checkpoint does not record it.

* **The operation** (:func:`infer_op`): the model is run once over the full ``(a, b)`` grid and its
  argmax answers are compared with every operation's; the one it agrees with on at least
  :data:`OP_AGREEMENT` of the inputs where that operation is defined is taken, and the notice says how
  sure (its agreement and the runner-up's). A checkpoint that does not yet generalize answers only the pairs
  it memorized: the operation is then read from the pairs it gets right, taken when its agreement stands
  :data:`OP_OVER_RUNNER_UP` times above the runner-up's and :data:`OP_OVER_CHANCE` times above chance
  (``1/p``, a uniform guess), with both margins in the notice. It is refused only when no operation stands
  out: a clear error naming every agreement and the margins it would need.
* **The split** (:func:`infer_split`): a file whose own training loop recorded its final training loss
  (the progress-measures paper's ``train_losses``) is matched against the candidate splits
  (:data:`SPLIT_SEEDS` seeds of both split methods at the recorded, else the paper's, training
  fraction): a candidate is taken when its training loss is within :data:`SPLIT_MATCH` of the recorded
  one and every other candidate is at least :data:`SPLIT_MARGIN` times farther off (in log ratio).
  Otherwise the split stays unknown and only full-grid figures are reported.

Examples:
    >>> import modadd_interp as mi
    >>> model, _ = mi.load()                        # the shipped p = 113 model (its file records add)
    >>> result = infer_op(model, ModelConfig.paper(113))
    >>> result.op, result.generalizes
    ('add', True)
    >>> result.notice("model.pt")
    "model.pt does not record its operation; op inferred: 'add' ((a + b) mod p) answers 100.0% of the grid; ..."
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

OP_OVER_RUNNER_UP = 2.0
OP_OVER_CHANCE = 3.0
"""Below :data:`OP_AGREEMENT`, an operation stands out when its agreement is at least 2x the runner-up's and 3x
chance (``1/p``). Measured (docs/verdicts.md): 48 untrained initialisations (p = 23-113, two widths) reach at most
1.33x the runner-up and 1.65x chance; 31 memorizing checkpoints (the shipped run's, add/sub/mul/div runs at
p = 23, lookup tables, a partial circuit) at least 3.29x (mul against div) and 6.9x."""

OP_MARGIN = 1.4
"""A margin within a factor 1.4 of its threshold (1.43-2.8x the runner-up, 2.1-4.2x chance) is borderline: the
notice says so. No member of the population falls there."""

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
        op: the operation read from the model, or None when none stands out (module docstring).
        agreement: ``{op: fraction of the defined inputs answered as op}`` for every candidate.
        chance: the agreement of a uniform guess, ``1/p``.

    Examples:
        >>> result = OpInference("add", {"add": 0.33, "sub": 0.05, "mul": 0.04, "div": 0.04}, 1 / 23)
        >>> round(result.over_runner_up, 1), round(result.over_chance, 1), result.generalizes
        (6.6, 7.6, False)
    """

    op: str | None
    agreement: dict[str, float]
    chance: float = 0.0

    @property
    def ranked(self) -> list[tuple[str, float]]:
        """``[(op, agreement)]``, best first."""
        return sorted(self.agreement.items(), key=lambda kv: -kv[1])

    @property
    def over_runner_up(self) -> float:
        """The best agreement over the runner-up's (inf with no runner-up, or a runner-up at 0)."""
        ranked = self.ranked
        if len(ranked) < 2 or ranked[1][1] <= 0:
            return float("inf")
        return ranked[0][1] / ranked[1][1]

    @property
    def over_chance(self) -> float:
        """The best agreement over chance (``1/p``)."""
        return self.ranked[0][1] / self.chance if self.chance > 0 else float("inf")

    @property
    def generalizes(self) -> bool:
        """The model gives the operation's answer on >= :data:`OP_AGREEMENT` of the grid."""
        return self.ranked[0][1] >= OP_AGREEMENT

    @property
    def borderline(self) -> bool:
        """Either margin of an operation read from the pairs a model gets right is within :data:`OP_MARGIN` of its
        threshold."""
        if self.generalizes:
            return False
        return any(threshold / OP_MARGIN <= value <= threshold * OP_MARGIN for value, threshold in
                   ((self.over_runner_up, OP_OVER_RUNNER_UP), (self.over_chance, OP_OVER_CHANCE)))

    def margins(self) -> str:
        """The margins in words: over the runner-up and over chance."""
        ranked = self.ranked
        runner = (f"{self.over_runner_up:.1f}x the runner-up {ranked[1][0]!r} ({ranked[1][1]:.1%})"
                  if len(ranked) > 1 else "no runner-up")
        return f"{runner} and {self.over_chance:.1f}x chance (1/p = {self.chance:.1%})"

    def notice(self, origin: str) -> str:
        """One line: which operation and how sure."""
        ranked = self.ranked
        best = ranked[0]
        if self.generalizes:
            runner = f"; next best {ranked[1][0]!r} {ranked[1][1]:.1%}" if len(ranked) > 1 else ""
            return (f"{origin} does not record its operation; op inferred: {best[0]!r} ({OPERATIONS[best[0]].formula}) "
                    f"answers {best[1]:.1%} of the grid{runner}. Pass --op / op= to set it.")
        near = " (borderline: a margin is near its threshold)" if self.borderline else ""
        return (f"{origin} does not record its operation, and the model does not generalize; op inferred from the "
                f"pairs it gets right: {best[0]!r} ({OPERATIONS[best[0]].formula}) agrees with {best[1]:.1%} of the "
                f"grid, {self.margins()}{near}. Pass --op / op= to set it.")


def infer_op(model, config: ModelConfig) -> OpInference:
    """Which operation ``model`` computes (see the module docstring).

    Examples:
        >>> infer_op(model, config).notice("model.pt")        # doctest: +SKIP
        "model.pt does not record its operation, and the model does not generalize; op inferred from the pairs ..."
    """
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
    result = OpInference(None, agreement, 1.0 / p)
    stands_out = result.over_runner_up >= OP_OVER_RUNNER_UP and result.over_chance >= OP_OVER_CHANCE
    if result.generalizes or stands_out:
        return dataclasses.replace(result, op=result.ranked[0][0])
    return result


def require_op(result: OpInference, origin: str) -> str:
    """``result.op``, or a clear error naming every agreement and the margins."""
    if result.op is None:
        ranked = ", ".join(f"{k} {v:.1%}" for k, v in result.ranked)
        raise TaskMismatchError(
            f"{origin} does not record its operation, and the model computes none of them on >= {OP_AGREEMENT:.0%} "
            f"of the grid, nor does one stand out in the pairs it gets right (agreement: {ranked}; the best is "
            f"{result.margins()}, where {OP_OVER_RUNNER_UP:g}x and {OP_OVER_CHANCE:g}x are needed). It may be "
            "untrained; pass op= / --op to analyse it anyway (a Clock-and-Pizza model also needs its "
            "config_<id>.json beside it)."
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
