"""Labels for trained models, computed without the package's analysis: generalization and key frequencies.

* **Generalization** is measured directly: the model is run on every pair and its held-out accuracy counted.
* **Key frequencies** by exhaustive search: the logits are averaged over the inputs of each residue
  ``s = x + y`` (``R[s, c]``, in the operation's group coordinates, computed here from the operands), transformed
  along ``s`` with ``torch.fft``, and every subset ``S`` of the :data:`SEARCHED` frequencies of largest energy,
  up to :data:`MAX_SIZE` of them, is scored by the held-out loss of the logits that keep only the constant and
  ``S`` (the paper's restricted logits). The label is the smallest subset that is **sufficient**: its loss is at
  most :data:`LOSS_FACTOR` times the model's own held-out loss and it recovers at least :data:`RECOVERED` of what
  the model recovers over the constant logits; among subsets of that size, the one with the lowest loss. No
  subset of up to :data:`MAX_SIZE` being sufficient, the label is None (unresolved).

This is the definition of a key frequency the benchmark measures the package's rule against: the fewest
frequencies whose ``x + y`` readout is as good as the model on pairs it never trained on. The rule finds its set
by a share-ordered prefix and causal pruning (``modadd_interp.probes.key_frequencies``); this module shares none
of its code (nor the grid cache's), only the task's pairs, labels and split.

Examples:
    >>> label = label_model(model, task)              # doctest: +SKIP
    >>> label.key_freqs, label.held_out_accuracy
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch

SEARCHED = 16
"""Frequencies searched: the 16 of largest energy in ``R`` (all of them for p <= 33)."""

MAX_SIZE = 6
"""The largest subset tried."""

LOSS_FACTOR = 2.0
RECOVERED = 0.95


@dataclasses.dataclass(frozen=True)
class Label:
    """What a model does, measured directly.

    Attributes:
        key_freqs: the smallest sufficient set (None: none of up to :data:`MAX_SIZE` frequencies is).
        held_out_accuracy, train_accuracy: the model's accuracy on each split (held-out: the whole grid when the
            split is unknown).
        held_out_loss: the model's held-out loss.
        subset_loss: the restricted held-out loss of ``key_freqs``.
        runner_up: the best subset of the same size other than the label, and its loss (None if there is none).
    """

    key_freqs: tuple[int, ...] | None
    held_out_accuracy: float
    train_accuracy: float
    held_out_loss: float
    subset_loss: float
    runner_up: tuple[tuple[int, ...], float] | None


def _discrete_log(p: int) -> dict[int, int]:
    g = next(g for g in range(2, p) if len({pow(g, e, p) for e in range(p - 1)}) == p - 1) if p > 2 else 1
    return {pow(g, e, p): e for e in range(p - 1)}


def group_view(logits: torch.Tensor, task) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(logits [m, p] reordered, residue [m], label column [m], held-out mask [m], n)`` of the inputs in the
    operation's group (every input for add/sub; those without a zero operand for mul/div), answers reordered so that
    column ``z`` is the group element ``z`` and the others follow."""
    p, op = task.p, task.op
    a, b = task.pairs[:, 0], task.pairs[:, 1]
    held_out = ~task.train_mask if task.split_known else torch.ones(p * p, dtype=torch.bool)
    if op in ("add", "sub"):
        x, y = a, (b if op == "add" else (-b) % p)
        return logits, (x + y) % p, (x + y) % p, held_out, p
    log = _discrete_log(p)
    keep = (a != 0) & (b != 0)
    x = torch.tensor([log.get(int(v), 0) for v in a])
    yb = torch.tensor([log.get(int(v), 0) for v in b])
    y = yb if op == "mul" else (-yb) % (p - 1)
    order = torch.tensor([pow(next(iter(k for k, v in log.items() if v == 1)), z, p) for z in range(p - 1)] + [0])
    s = (x + y) % (p - 1)
    return logits[keep][:, order], s[keep], s[keep], held_out[keep], p - 1


@torch.no_grad()
def model_logits(model, config, task, chunk: int = 4096) -> torch.Tensor:
    """``[p*p, p]`` float64 answer logits of every pair, from the model's own forward pass."""
    pairs = task.pairs
    out = [model(config.encode(pairs[s: s + chunk]))[:, -1, : task.p].double() for s in range(0, len(pairs), chunk)]
    return torch.cat(out)


@torch.no_grad()
def accuracies(model, config, task, chunk: int = 4096) -> tuple[float, float]:
    """``(held-out accuracy, training accuracy)`` from the model's argmax answers, chunk by chunk (any p)."""
    pairs = task.pairs
    hit = torch.cat([model(config.encode(pairs[s: s + chunk]))[:, -1, : task.p].argmax(-1)
                     for s in range(0, len(pairs), chunk)]) == task.labels
    defined = task.labels >= 0
    held = ~task.train_mask if task.split_known else torch.ones_like(defined)
    held_acc = float(hit[held & defined].double().mean())
    return held_acc, float(hit[task.train_mask & defined].double().mean()) if task.split_known else held_acc


def label_model(model, config, task, search: bool = True) -> Label:
    """The model's generalization and key frequencies, measured directly (module docstring); ``search=False``:
    the accuracies only (for a model whose key frequencies are known by construction, at any p)."""
    if not search:
        held_acc, train_acc = accuracies(model, config, task)
        return Label(None, held_acc, train_acc, math.nan, math.nan, None)
    logits = model_logits(model, config, task)
    defined = task.labels >= 0
    held = ~task.train_mask if task.split_known else torch.ones_like(defined)
    hit = logits.argmax(-1) == task.labels
    held_acc = float(hit[held & defined].double().mean())
    train_acc = float(hit[task.train_mask & defined].double().mean()) if task.split_known else held_acc
    group_logits, residue, label, held_out, n = group_view(logits, task)
    own = -(group_logits.log_softmax(-1).gather(1, label[:, None])[:, 0])
    model_loss = float(own[held_out].mean())
    R = torch.zeros(n, group_logits.shape[1], dtype=torch.float64).index_add_(0, residue, group_logits)
    R /= torch.bincount(residue, minlength=n).clamp_min(1)[:, None]
    spectrum = torch.fft.fft(R, dim=0)
    freqs = list(range(1, n // 2 + 1))
    components = []
    for k in freqs:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[k] = mask[(n - k) % n] = True
        components.append(torch.fft.ifft(torch.where(mask[:, None], spectrum, 0), dim=0).real)
    const = torch.fft.ifft(torch.where((torch.arange(n) == 0)[:, None], spectrum, 0), dim=0).real
    comp = torch.stack(components)  # [F, n, c]
    energy = comp[:, :, :n].sub(comp[:, :, :n].mean(-1, keepdim=True)).square().sum((1, 2))
    searched = [freqs[i] for i in energy.argsort(descending=True)[:SEARCHED].tolist()]
    weight = torch.bincount(residue[held_out], minlength=n).double()
    weight /= weight.sum()
    s_index = torch.arange(n)

    def losses(subsets: list[tuple[int, ...]]) -> torch.Tensor:
        index = torch.tensor([[k - 1 for k in sub] for sub in subsets])
        logits_s = const + comp[index].sum(1)  # [B, n, c]
        nll = logits_s.logsumexp(-1) - logits_s[:, s_index, s_index]
        return nll @ weight

    base = float((const.logsumexp(-1) - const[s_index, s_index]) @ weight)  # the constant logits alone
    target_recovered = RECOVERED * (base - model_loss)
    for size in range(1, MAX_SIZE + 1):
        subsets = list(itertools.combinations(sorted(searched), size))
        scores = torch.cat([losses(subsets[i: i + 2048]) for i in range(0, len(subsets), 2048)])
        ok = (scores <= LOSS_FACTOR * model_loss) & (base - scores >= target_recovered)
        if bool(ok.any()):
            ranked = [i for i in scores.argsort().tolist() if bool(ok[i])]
            best = ranked[0]
            others = [i for i in scores.argsort().tolist() if i != best]
            runner = (subsets[others[0]], float(scores[others[0]])) if others else None
            return Label(subsets[best], held_acc, train_acc, model_loss, float(scores[best]), runner)
    return Label(None, held_acc, train_acc, model_loss, math.nan, None)
