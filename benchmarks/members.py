"""The labelled population of ``benchmarks/verdicts.py``: every member, how to build it, and its ground truth.

Each :class:`Member` builds ``(model, task)`` when asked and carries what is known of it without the package's
analysis:

* **by construction** (planted circuits, the lookup table, partial circuits, untrained initialisations;
  ``benchmarks/population.py``): the key frequencies, the algorithm (for a mixture, the kind carrying at least
  three quarters of the planted frequencies' logit energy, measured by ``benchmarks/labels.py``'s own FFT), and
  whether it generalizes;
* **by the papers' authors** (the Clock-and-Pizza fixtures: Zhong et al. call Model A a pizza and Model B a clock;
  the progress-measures checkpoints and the shipped model: Nanda et al.'s clock);
* **by Zhong et al.'s attention-rate finding** for the trained models of our own (a one-layer model at attention
  rate 1 is a clock, at rate <= 0.01 a pizza; between, no label);
* **measured directly** (``benchmarks/labels.py``): every trained model's held-out accuracy (generalization)
  and its key frequencies by exhaustive search.

Examples:
    >>> members = population(quick=True)
    >>> members[0].name, members[0].group
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from population import lookup_table, partial, planted, untrained

import modadd_interp as mi
from modadd_interp import tl_adapter

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@dataclasses.dataclass
class Member:
    """One model of the population and what is known of it.

    Attributes:
        name: unique, readable.
        group: ``"planted"``, ``"lookup table"``, ``"partial circuit"``, ``"untrained"``, ``"shipped run"``,
            ``"fixture"`` or ``"sweep"``.
        build: ``() -> (model, task)``.
        algorithm: the true algorithm (``"clock"``, ``"pizza"``, ``"mixed"``, ``"none"``), or None when no label
            exists.
        key_freqs: the true key frequencies by construction (None: measured by ``labels.py``).
        kinds: ``{k: "clock" | "pizza"}`` of a planted circuit (to name a mixture's algorithm).
        how: where the labels come from, in words.
    """

    name: str
    group: str
    build: Callable[[], tuple]
    algorithm: str | None
    key_freqs: tuple[int, ...] | None = None
    kinds: dict[int, str] | None = None
    how: str = ""


def _built(cfg, weights, task=None):
    return tl_adapter.build_model(cfg, weights), task or mi.ModularTask(p=cfg.p)


def _planted_member(name: str, p: int, kinds: dict[int, str], **kw) -> Member:
    return Member(name, "planted", lambda: _built(*planted(p, kinds, **kw)), None, tuple(sorted(kinds)), kinds,
                  "by construction")


PLANTED = [
    # (name, p, kinds, options)
    ("clock p23 {2,9}", 23, {2: "clock", 9: "clock"}, {}),
    ("clock p31 {4,11,14}", 31, {4: "clock", 11: "clock", 14: "clock"}, {}),
    ("clock p31 {5} alone", 31, {5: "clock"}, {}),
    ("clock p59 {3,17,22,28}", 59, {3: "clock", 17: "clock", 22: "clock", 28: "clock"}, {"phases": 4}),
    ("clock p113 {6,23,41}", 113, {6: "clock", 23: "clock", 41: "clock"}, {"phases": 4}),
    ("clock p31 {7,12} padded d128", 31, {7: "clock", 12: "clock"}, {"pad_to": (128, 512)}),
    ("clock p31 {14 dominant, 15}", 31, {14: "clock", 15: "clock"}, {"scales": {14: 30.0, 15: 4.0}}),
    ("clock p59 {8 dominant, 21, 25}", 59, {8: "clock", 21: "clock", 25: "clock"},
     {"scales": {8: 40.0, 21: 6.0, 25: 5.0}, "phases": 4}),
    ("clock p23 {3 dominant, 10} padded d64", 23, {3: "clock", 10: "clock"},
     {"scales": {3: 30.0, 10: 5.0}, "pad_to": (64, 256)}),
    ("pizza p23 {4,7}", 23, {4: "pizza", 7: "pizza"}, {}),
    ("pizza p31 {3,10,11}", 31, {3: "pizza", 10: "pizza", 11: "pizza"}, {"phases": 8}),
    ("pizza p59 {3,15,17}", 59, {3: "pizza", 15: "pizza", 17: "pizza"}, {}),
    ("pizza p113 {9,30,44,50}", 113, {9: "pizza", 30: "pizza", 44: "pizza", 50: "pizza"}, {}),
    ("pizza p31 {6 dominant, 13}", 31, {6: "pizza", 13: "pizza"}, {"scales": {6: 30.0, 13: 4.0}}),
    ("pizza p59 {5,19} padded d128", 59, {5: "pizza", 19: "pizza"}, {"pad_to": (128, 512)}),
    ("mixture p31 clock {2,9} + pizza {13}", 31, {2: "clock", 9: "clock", 13: "pizza"}, {}),
    ("mixture p31 clock {5} + pizza {8}", 31, {5: "clock", 8: "pizza"}, {}),
    ("mixture p59 clock {4,11,20} + weak pizza {27}", 59, {4: "clock", 11: "clock", 20: "clock", 27: "pizza"},
     {"scales": {27: 10.0}, "phases": 4}),
    ("mixture p59 pizza {7,16} + weak clock {24}", 59, {7: "pizza", 16: "pizza", 24: "clock"},
     {"scales": {24: 8.0}, "phases": 4}),
    ("mixture p23 clock {1} + pizza {6,10}", 23, {1: "clock", 6: "pizza", 10: "pizza"}, {}),
]

QUICK_PLANTED = {"clock p31 {4,11,14}", "clock p31 {14 dominant, 15}", "pizza p31 {3,10,11}",
                 "mixture p31 clock {5} + pizza {8}", "pizza p31 {6 dominant, 13}"}


def planted_members(quick: bool = False) -> list[Member]:
    """The planted circuits (clocks, pizzas, mixtures; several p and widths; some with one dominant frequency)."""
    return [_planted_member(name, p, kinds, **kw) for name, p, kinds, kw in PLANTED
            if not quick or name in QUICK_PLANTED]


def memorizer_members(quick: bool = False) -> list[Member]:
    """Lookup tables, partial circuits beside a table, and untrained initialisations."""
    out = []
    tables = [(23, 0.3, "random"), (31, 0.5, "random"), (31, 0.3, "blank"), (23, 0.6, "blank")]
    for p, frac, held in tables[: 2 if quick else None]:
        out.append(Member(f"lookup table p{p} frac {frac} held-out {held}", "lookup table",
                          lambda p=p, frac=frac, held=held: _table(p, frac, held), "none", (), None,
                          "by construction: one neuron per input; no circuit"))
    partials = [(31, {4: "clock", 9: "clock"}, 3.0, 0.3), (31, {4: "clock", 9: "clock"}, 2.0, 0.5),
                (23, {5: "pizza", 8: "pizza"}, 4.0, 0.4), (31, {3: "clock", 7: "clock", 12: "clock"}, 1.5, 0.3),
                (23, {2: "clock", 9: "clock"}, 1.0, 0.6), (31, {6: "pizza", 11: "pizza", 13: "pizza"}, 2.5, 0.5)]
    for p, kinds, scale, frac in partials[: 2 if quick else None]:
        out.append(Member(f"partial {'/'.join(sorted(set(kinds.values())))} p{p} {sorted(kinds)} scale {scale} "
                          f"frac {frac}", "partial circuit",
                          lambda p=p, kinds=kinds, scale=scale, frac=frac: _partial(p, kinds, scale, frac), None,
                          tuple(sorted(kinds)), kinds, "by construction: a planted circuit at a small scale beside "
                          "a table that answers the training pairs and gives each held-out pair a wrong answer"))
    for p, seed in [(23, 0), (31, 1), (59, 2), (113, 3)][: 2 if quick else None]:
        out.append(Member(f"untrained p{p} seed {seed}", "untrained",
                          lambda p=p, seed=seed: _built(*untrained(p, seed)), "none", (), None,
                          "by construction: the paper's initialisation"))
    return out


def _table(p, frac, held):
    cfg, w, task = lookup_table(p, frac, held_out=held)
    return tl_adapter.build_model(cfg, w), task


def _partial(p, kinds, scale, frac):
    cfg, w, task = partial(p, kinds, scale, frac_train=frac)
    return tl_adapter.build_model(cfg, w), task


AUTHORS = {"model_p99zdpze5l.pt": "pizza", "model_l8k1hzciux.pt": "clock", "shipped": "clock",
           "wd_10-1_mod_addition_loss_curve.pth": "clock", "low_precision_mod_addition.pth": "clock",
           "mod_addition_no_wd.pth": "clock"}


def rate_label(attn_rate: float, n_layers: int) -> str | None:
    """Zhong et al.'s attention-rate finding as a label: rate 1 (one layer) a clock, rate <= 0.01 a pizza."""
    if attn_rate <= 0.01:
        return "pizza"
    if attn_rate >= 1.0 and n_layers == 1:
        return "clock"
    return None


def fixture_members(quick: bool = False) -> list[Member]:
    """The shipped model, the paper's three checkpoints, the Clock-and-Pizza fixtures and ours (tests/data)."""
    paths = [None, *sorted((DATA / "paper").glob("*.pth")), *sorted((DATA / "clock_and_pizza").glob("model_*.pt")),
             # the Fourier verdict's population: the group fixtures (group_*) are read by the irrep rule instead
             *sorted(p for p in (DATA / "trained").glob("*") if not p.name.startswith("group_"))]
    if quick:
        paths = [p for p in paths if p is not None and p.name in ("model_p99zdpze5l.pt", "model_l8k1hzciux.pt",
                                                                      "narrow_p31_wd3_seed1_ft075.safetensors")]
    out = []
    for path in paths:
        name = "shipped" if path is None else path.name
        if name in AUTHORS:
            algorithm, how = AUTHORS[name], "the authors' label"
        else:
            algorithm, how = "by attention rate", "Zhong et al.'s attention-rate finding"
        out.append(Member(name, "fixture", lambda path=path: _load(path), algorithm, None, None, how))
    return out


def _load(path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mi.load(path)


def shipped_run_members(quick: bool = False) -> list[Member]:
    """The shipped run's checkpoints (memorization, circuit formation, cleanup)."""
    run = mi.shipped_run()
    index = range(len(run)) if not quick else [1, 4, len(run) - 1]
    return [Member(f"shipped run step {run.steps[i]}", "shipped run",
                   lambda i=i: (tl_adapter.build_model(run.config, run.weights[i]), run.task),
                   "by attention rate", None, None, "measured (generalization, key frequencies); Nanda et al.'s "
                   "clock where it generalizes") for i in index]


def sweep_members(directory: Path) -> list[Member]:
    """Every run of a sweep directory (``modadd-interp sweep ... --out DIR``): its last checkpoint."""
    out = []
    for line in (directory / "results.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("status") != "ok":
            continue
        run_dir = Path(record["run_dir"])
        if not run_dir.is_absolute():
            run_dir = directory / run_dir
        last = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))[-1]
        out.append(Member(f"{directory.name}/{record['cell']}", "sweep", lambda last=last: _load(last),
                          "by attention rate", None, None, "measured; Zhong et al.'s attention-rate finding"))
    return list({m.name: m for m in out}.values())  # a cell run again appears once, its newest record


def large_members() -> list[Member]:
    """The planted p = 1009 pizza of ``benchmarks/scale.py`` (three circles inside the paper's architecture, plus
    1e-3 x a paper initialisation; its neurons average the two points: a pizza by construction)."""
    from scale import planted_freqs, planted_paper_weights

    from modadd_interp.config import ModelConfig

    def build():
        return tl_adapter.build_model(ModelConfig.paper(1009), planted_paper_weights(1009)), mi.ModularTask(p=1009)

    freqs = planted_freqs(1009)
    return [Member("planted pizza p1009 (benchmarks/scale.py)", "planted", build, None, tuple(freqs),
                   dict.fromkeys(freqs, "pizza"), "by construction")]


def population(quick: bool = False, sweeps: list[Path] | None = None, large: bool = False) -> list[Member]:
    """Every member (``quick``: a few of each kind, for CI; ``large``: with the planted p = 1009 pizza)."""
    members = planted_members(quick) + (large_members() if large else []) + memorizer_members(quick)
    members += fixture_members(quick)
    members += shipped_run_members(quick)
    for directory in sweeps or []:
        members += sweep_members(directory)
    return members

