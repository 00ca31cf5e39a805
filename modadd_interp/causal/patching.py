"""Activation patching along the circuit, with TransformerLens's own ``patching`` module.

Clean inputs ``(a, b)`` and corrupted inputs ``(a', b)`` (or ``(a, b')``) are drawn with a
seeded generator. The metric is the logit difference at '=' between the clean answer
``a+b`` and the corrupted answer; each component's score is the fraction of that
difference a patch of its clean activation restores:
``(patched - corrupted) / (clean - corrupted)``.

Components: the embedding at the corrupted position (TL's ``resid_pre`` patch), each
head's output (``attn_head_out_all_pos``), the attention output and MLP output at '='
(``attn_out`` / ``mlp_out`` by position), all MLP neurons at '=' and each neuron cluster
(``generic_activation_patch`` with a cluster setter).

Examples:
    >>> result = activation_patching(model, task, clusters={6: [1, 5], 23: [2]})  # doctest: +SKIP
    >>> result.to_frame()
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pandas as pd
import torch

from ..task import ModularTask

DEFAULT_PAIRS = 128


@dataclasses.dataclass(frozen=True)
class PatchingResult:
    """Fraction of the clean-vs-corrupted logit difference restored by each patch.

    Attributes:
        restored: ``{corruption: {component: fraction}}`` with corruptions ``"a"`` and ``"b"``.
        clean_logit_diff, corrupted_logit_diff: ``{corruption: value}`` baselines.
        n_pairs: the number of input pairs.
    """

    restored: dict[str, dict[str, float]]
    clean_logit_diff: dict[str, float]
    corrupted_logit_diff: dict[str, float]
    n_pairs: int

    def to_frame(self) -> pd.DataFrame:
        """One row per component, one column per corruption."""
        return pd.DataFrame(self.restored).rename_axis("component").reset_index()

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return dataclasses.asdict(self)

    def plot(self):
        """Grouped bars of the fraction restored per component."""
        from ..viz.figures import patching_figure

        return patching_figure(self)


@contextlib.contextmanager
def _eval_mode(model) -> Iterator[None]:
    """TL's patching requires eval mode: switch temporarily, restore every module's flag."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


@contextlib.contextmanager
def _quiet_progress(module) -> Iterator[None]:
    """Silence TL's per-sweep tqdm bar (``patching.tqdm``) for the call; restored afterwards."""
    original = module.tqdm
    module.tqdm = lambda iterable, *_args, **_kwargs: iterable
    try:
        yield
    finally:
        module.tqdm = original


def _pairs(task: ModularTask, n: int, corrupt: str, seed: int):
    p = task.p
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, p, (n,), generator=gen)
    b = torch.randint(0, p, (n,), generator=gen)
    shift = torch.randint(1, p, (n,), generator=gen)
    a2, b2 = ((a + shift) % p, b) if corrupt == "a" else (a, (b + shift) % p)
    eq = torch.full_like(a, task.eq_token)
    return torch.stack([a, b, eq], 1), torch.stack([a2, b2, eq], 1), (a + b) % p, (a2 + b2) % p


def activation_patching(
    model, task: ModularTask, clusters: dict[int, list[int]] | None = None, n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
) -> PatchingResult:
    """Patch each circuit component from clean into corrupted runs; see the module docstring."""
    from transformer_lens import patching

    clusters = clusters or {}
    restored: dict[str, dict[str, float]] = {}
    clean_ld, corrupt_ld = {}, {}
    with _eval_mode(model), _quiet_progress(patching), torch.no_grad():
        for corrupt in ("a", "b"):
            clean, corrupted, answer, wrong = _pairs(task, n_pairs, corrupt, seed)

            def logit_diff(logits: torch.Tensor, answer=answer, wrong=wrong) -> torch.Tensor:
                final = logits[:, -1].double()
                return (final.gather(1, answer[:, None]) - final.gather(1, wrong[:, None])).mean()

            clean_logits, clean_cache = model.run_with_cache(clean)
            base_clean = float(logit_diff(clean_logits))
            base_corrupt = float(logit_diff(model(corrupted)))
            span = base_clean - base_corrupt

            def frac(value, base_corrupt=base_corrupt, span=span) -> float:
                return (float(value) - base_corrupt) / span if span else float("nan")

            pos = 0 if corrupt == "a" else 1
            embed = patching.get_act_patch_resid_pre(model, corrupted, clean_cache, logit_diff)[0, pos]
            scores = {"embed": frac(embed)}
            heads = patching.get_act_patch_attn_head_out_all_pos(model, corrupted, clean_cache, logit_diff)[0]
            scores.update({f"head {h}": frac(v) for h, v in enumerate(heads.tolist())})
            scores["attention out (=)"] = frac(patching.get_act_patch_attn_out(model, corrupted, clean_cache,
                                                                               logit_diff)[0, -1])
            groups = {"all neurons (=)": list(range(model.cfg.d_mlp))}
            groups.update({f"cluster {k} (=)": v for k, v in clusters.items()})
            names = list(groups)

            def setter(act, index, clean_act, names=names, groups=groups):
                neurons = groups[names[index[1]]]
                act[:, -1, neurons] = clean_act[:, -1, neurons]
                return act

            index = pd.DataFrame({"layer": [0] * len(names), "group": range(len(names))})
            values = patching.generic_activation_patch(model, corrupted, clean_cache, logit_diff, setter, "post",
                                                       index_df=index)
            scores.update({name: frac(v) for name, v in zip(names, values.tolist(), strict=True)})
            scores["MLP out (=)"] = frac(patching.get_act_patch_mlp_out(model, corrupted, clean_cache,
                                                                        logit_diff)[0, -1])
            restored[corrupt] = scores
            clean_ld[corrupt], corrupt_ld[corrupt] = base_clean, base_corrupt
            del clean_cache
    return PatchingResult(restored, clean_ld, corrupt_ld, n_pairs)
