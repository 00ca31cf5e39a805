"""Activation patching along the circuit, with TransformerLens's own ``patching`` module.

Clean inputs ``(a, b)`` and corrupted inputs ``(a', b)`` (or ``(a, b')``) are drawn with a
seeded generator, in the operation's group coordinates so that the corrupted answer always differs. The
metric is the logit difference at the last position between the clean answer ``a op b`` and the corrupted
answer; each component's score is the fraction of that difference a patch of its clean activation
restores: ``(patched - corrupted) / (clean - corrupted)``.

Components: the embedding at the corrupted position (TL's ``resid_pre`` patch), each head's output
(``attn_head_out_all_pos``), the attention output and MLP output at the last position (``attn_out`` /
``mlp_out`` by position), all MLP neurons at the last position and each readout-layer neuron cluster
(``generic_activation_patch`` with a cluster setter). The last position is ``'='`` for models with an
``'='`` token and ``b`` otherwise; component names say which (``"MLP out (=)"``, ``"MLP out (b)"``). A
deeper model has these per layer, prefixed ``"L{layer} "``.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> result = activation_patching(model, task)     # ~10 s: not run by the doctests  # doctest: +SKIP
    >>> result.to_frame()                             # doctest: +SKIP
               component     a     b
    0              embed  1.00  1.00
    1             head 0  0.21  0.26
    2             head 1  0.26  0.25
    3             head 2  0.24  0.19
    4             head 3  0.25  0.26
    5  attention out (=)  1.00  1.00
    6    all neurons (=)  0.98  0.98
    7        MLP out (=)  0.98  0.98
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pandas as pd
import torch

from .. import tl_adapter
from ..display import Displayable, Summary
from ..task import ModularTask

DEFAULT_PAIRS = 128

PATCH_RESTORED = 0.9
"""Patching a component on the main path restores at least 90% of the logit difference."""


@dataclasses.dataclass(frozen=True, repr=False)
class PatchingResult(Displayable):
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

    def _summary(self) -> Summary:
        frame = self.to_frame()
        restoring = frame[(frame.drop(columns="component") >= PATCH_RESTORED).all(axis=1)]["component"].tolist()
        return Summary(f"{len(restoring)} of {len(frame)} components restore >= {PATCH_RESTORED:.0%} of the logit "
                       f"difference under every corruption" + (f": {', '.join(restoring)}" if restoring else ""),
                       details=[f"{self.n_pairs} clean/corrupted input pairs per corruption"], rows=frame)


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


def _pairs(task: ModularTask, config, count: int, corrupt: str, seed: int):
    """Clean and corrupted token sequences and their answers, drawn in group coordinates ``(x, y)``."""
    coords = task.grid.coords
    n = coords.n
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, n, (count,), generator=gen)
    y = torch.randint(0, n, (count,), generator=gen)
    shift = torch.randint(1, n, (count,), generator=gen)
    x2, y2 = ((x + shift) % n, y) if corrupt == "a" else (x, (y + shift) % n)

    def tokens(xs, ys):
        return config.encode(torch.stack([coords.a_tokens[xs], coords.b_tokens[ys]], 1))

    return tokens(x, y), tokens(x2, y2), coords.c_tokens[(x + y) % n], coords.c_tokens[(x2 + y2) % n]


def activation_patching(
    model, task: ModularTask, clusters: dict[int, list[int]] | None = None, n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
) -> PatchingResult:
    """Patch each circuit component from clean into corrupted runs; see the module docstring.

    Args:
        clusters: ``{freq: [neuron]}`` readout-layer neuron clusters to patch as groups.
    """
    from transformer_lens import patching

    config = tl_adapter.model_config(model)
    clusters = clusters or {}
    if not config.n_heads:
        return _mlp_patching(model, task, config, clusters, n_pairs, seed)
    n_layers, last = config.n_layers, config.n_layers - 1
    at = "=" if config.has_eq else "b"
    restored: dict[str, dict[str, float]] = {}
    clean_ld, corrupt_ld = {}, {}

    def name(layer: int, text: str) -> str:
        return text if n_layers == 1 else f"L{layer} {text}"

    with _eval_mode(model), _quiet_progress(patching), torch.no_grad():
        for corrupt in ("a", "b"):
            clean, corrupted, answer, wrong = _pairs(task, config, n_pairs, corrupt, seed)

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
            heads = patching.get_act_patch_attn_head_out_all_pos(model, corrupted, clean_cache, logit_diff)
            attn_out = patching.get_act_patch_attn_out(model, corrupted, clean_cache, logit_diff)
            mlp_out = patching.get_act_patch_mlp_out(model, corrupted, clean_cache, logit_diff)
            groups = {name(layer, f"all neurons ({at})"): (layer, list(range(config.d_mlp)))
                      for layer in range(n_layers)}
            groups.update({f"cluster {k} ({at})": (last, v) for k, v in clusters.items()})
            names = list(groups)

            def setter(act, index, clean_act, names=names, groups=groups):
                neurons = groups[names[index[1]]][1]
                act[:, -1, neurons] = clean_act[:, -1, neurons]
                return act

            index = pd.DataFrame({"layer": [groups[g][0] for g in names], "group": range(len(names))})
            values = patching.generic_activation_patch(model, corrupted, clean_cache, logit_diff, setter, "post",
                                                       index_df=index).tolist()
            for layer in range(n_layers):
                scores.update({name(layer, f"head {h}"): frac(v) for h, v in enumerate(heads[layer].tolist())})
                scores[name(layer, f"attention out ({at})")] = frac(attn_out[layer, -1])
                neurons = name(layer, f"all neurons ({at})")
                scores[neurons] = frac(values[names.index(neurons)])
                scores[name(layer, f"MLP out ({at})")] = frac(mlp_out[layer, -1])
            scores.update({g: frac(values[i]) for i, g in enumerate(names) if g.startswith("cluster")})
            restored[corrupt] = scores
            clean_ld[corrupt], corrupt_ld[corrupt] = base_clean, base_corrupt
            del clean_cache
    return PatchingResult(restored, clean_ld, corrupt_ld, n_pairs)


def _mlp_patching(model, task: ModularTask, config, clusters: dict[int, list[int]], n_pairs: int,
                  seed: int) -> PatchingResult:
    """The same scores for a model without attention (an MLP: :mod:`modadd_interp.mlp`), by our own hooks: TL's
    ``patching`` sweeps assume attention blocks. The path is the corrupted operand's embedding (``hook_embed`` at
    its slot), all neurons (``mlp.hook_post``), each cluster's neurons, and the MLP output (``hook_mlp_out``)."""
    restored: dict[str, dict[str, float]] = {}
    clean_ld, corrupt_ld = {}, {}
    points = {"embed": "hook_embed", "all neurons (b)": "blocks.0.mlp.hook_post",
              "MLP out (b)": "blocks.0.hook_mlp_out"}
    with _eval_mode(model), torch.no_grad():
        for corrupt in ("a", "b"):
            clean, corrupted, answer, wrong = _pairs(task, config, n_pairs, corrupt, seed)

            def logit_diff(logits: torch.Tensor, answer=answer, wrong=wrong) -> float:
                final = logits[:, -1].double()
                return float((final.gather(1, answer[:, None]) - final.gather(1, wrong[:, None])).mean())

            _, clean_cache = model.run_with_cache(clean, names_filter=lambda name: name in points.values())
            base_clean, base_corrupt = logit_diff(model(clean)), logit_diff(model(corrupted))
            span = base_clean - base_corrupt
            pos = 0 if corrupt == "a" else 1
            edits = {"embed": ("hook_embed", (slice(None), pos))}
            edits.update({name: (hook, (slice(None),)) for name, hook in points.items() if name != "embed"})
            edits.update({f"cluster {k} (b)": ("blocks.0.mlp.hook_post", (slice(None), -1, list(v)))
                          for k, v in clusters.items()})
            scores = {}
            for name, (hook, index) in edits.items():
                def patch(act, hook=hook, index=index, source=clean_cache):
                    act = act.clone()
                    act[index] = source[hook][index]
                    return act

                with tl_adapter.hooked(model, [(hook, patch)]):
                    value = logit_diff(model(corrupted))
                scores[name] = (value - base_corrupt) / span if span else float("nan")
            restored[corrupt] = scores
            clean_ld[corrupt], corrupt_ld[corrupt] = base_clean, base_corrupt
    return PatchingResult(restored, clean_ld, corrupt_ld, n_pairs)
