"""The verdict measured against a labelled population: how often it is right, and where its thresholds sit.

    python benchmarks/verdicts.py --sweep sweeps/wd_frac --sweep sweeps/narrow_p23   # the whole population
    python benchmarks/verdicts.py --quick                                           # CI: a subset, minutes
    python benchmarks/verdicts.py --write-fixture RUN_DIR                           # the tests' narrow p = 31 model

The population (``benchmarks/members.py``; docs/verdicts.md describes it): planted clocks, pizzas and mixtures at
p = 23-113 and several widths, some with one dominant frequency; lookup tables (logits that are a table, no circuit);
partial circuits beside a table; untrained initialisations; the shipped run's checkpoints through memorization;
the shipped model, the paper's three checkpoints, the Clock-and-Pizza fixtures and our trained fixtures; and every
run of the sweep directories given (``modadd-interp sweep ... --out DIR``). Each member's truth comes by
construction, from the papers' authors, from Zhong et al.'s attention-rate finding, or is measured directly
without the package's analysis (``benchmarks/labels.py``: the held-out accuracy, and the key frequencies by an
exhaustive search over subsets of frequencies).

Printed: the confusion table (the verdict's algorithm against the truth), ``circuit_confirmed`` by generalization,
the key-frequency precision and recall on the generalizing members, the operation read from the pairs each model
gets right, and every deciding threshold with the population's figures on either side of it and within its
margin. ``--json PATH`` writes every member's row. ``--quick`` analyzes a subset (a few of each kind) and asserts
the invariants the full run reports (no confirmed member that does not generalize; recall on the generalizing
ones at least :data:`MIN_RECALL`).

Generalization, for the table, is Liu et al.'s threshold of the sweep's phase labels (``docs/sweeps.md``): a
member *generalizes* when it answers at least 90% of its held-out pairs, and *does not* below that; the verdict's
own, stricter threshold (99%, ``GENERALIZES_ACCURACY``) is one of the thresholds measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labels import group_view, label_model, model_logits  # noqa: E402
from members import Member, population, rate_label  # noqa: E402

import modadd_interp as mi  # noqa: E402
from modadd_interp import tl_adapter  # noqa: E402
from modadd_interp.causal import circles as circle_module  # noqa: E402
from modadd_interp.causal import claims as claim_module  # noqa: E402
from modadd_interp.causal import verdict as verdict_module  # noqa: E402
from modadd_interp.inference import OP_MARGIN, OP_OVER_CHANCE, OP_OVER_RUNNER_UP, infer_op  # noqa: E402

kf_module = importlib.import_module("modadd_interp.probes.key_frequencies")

LIU_GENERALIZES = 0.9
"""Held-out accuracy at which a member counts as generalizing in the tables (Liu et al.'s, as the sweep's labels)."""

LARGE_P = 200
"""Above this p a planted member's truth is its construction alone (a single kind; no FFT of the whole grid's logits,
which would not fit in memory at p = 1009)."""

MIN_RECALL = 0.95
"""The key-frequency recall on generalizing members that ``--quick`` asserts."""

ALGORITHMS = ("clock", "pizza", "mixed", "none")
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "trained" / "narrow_p31_wd3_seed1_ft075.safetensors"


def energy_kind(model, task, kinds: dict[int, str]) -> str:
    """A planted mixture's algorithm: the kind whose frequencies carry at least ``ALGORITHM_SHARE`` of the planted
    frequencies' logit energy, measured here with our own FFT of the residue-mean logits (else ``"mixed"``)."""
    logits = model_logits(model, tl_adapter.model_config(model), task)
    group_logits, residue, _, _, n = group_view(logits, task)
    R = torch.zeros(n, group_logits.shape[1], dtype=torch.float64).index_add_(0, residue, group_logits)
    R -= R.mean(-1, keepdim=True)
    spectrum = torch.fft.fft(R, dim=0).abs().square().sum(-1)
    energy = {k: float(spectrum[k] + spectrum[(n - k) % n]) for k in kinds}
    total = sum(energy.values())
    for kind in ("clock", "pizza"):
        if sum(v for k, v in energy.items() if kinds[k] == kind) >= verdict_module.ALGORITHM_SHARE * total:
            return kind
    return "mixed"


def analyze_member(member: Member) -> dict:
    """Build, label and analyze one member; return its row."""
    start = time.perf_counter()
    model, task = member.build()
    config = tl_adapter.model_config(model)
    label = label_model(model, config, task, search=member.key_freqs is None)
    generalizes = label.held_out_accuracy >= LIU_GENERALIZES
    if member.key_freqs is not None:
        truth_freqs = tuple(member.key_freqs)
    else:
        truth_freqs = tuple(label.key_freqs) if (generalizes and label.key_freqs is not None) else None
    if member.kinds is not None and task.p > LARGE_P:
        algorithm = next(iter(set(member.kinds.values()))) if len(set(member.kinds.values())) == 1 else "mixed"
        truth = algorithm if generalizes else f"partial {algorithm}"
    elif member.kinds is not None:
        algorithm = energy_kind(model, task, member.kinds)
        truth = algorithm if generalizes else f"partial {algorithm}"
    elif member.algorithm == "by attention rate":
        by_rate = rate_label(config.attn_rate, config.n_layers)
        truth = (by_rate or "unlabelled") if generalizes else "memorizing (trained)"
    else:
        truth = member.algorithm if generalizes or member.algorithm == "none" else f"partial {member.algorithm}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = mi.verify_circuit(model, task)
        inferred = infer_op(model, config)
    verdict, kf = report.verdict, report.key_frequencies
    claims = {c.name.split(":")[0]: c for c in report.claims if c.decides}
    signatures = {k: v for k, sig in (report.circles.signatures.items() if report.circles else []) for v in
                  sig.values()}
    weights = {k: float(kf.evidence["logit_share"][k - 1]) for k in signatures}
    total = sum(weights.values()) or 1.0
    necessity = kf.necessity()
    row = {
        "name": member.name, "group": member.group, "how": member.how, "p": task.p, "op": task.op,
        "d_model": config.d_model, "n_layers": config.n_layers, "attn_rate": config.attn_rate,
        "held_out_accuracy": label.held_out_accuracy, "train_accuracy": label.train_accuracy,
        "generalizes": generalizes, "truth": truth, "truth_freqs": list(truth_freqs) if truth_freqs else truth_freqs,
        "label_freqs": list(label.key_freqs) if label.key_freqs else label.key_freqs,
        "algorithm": verdict.algorithm, "key_freqs": list(kf.freqs), "kf_confidence": kf.confidence,
        "confirmed": verdict.confirmed, "verdict_generalizes": verdict.generalizes,
        "confidence": verdict.confidence, "borderline": list(verdict.borderline), "line": verdict.line,
        "op_inferred": inferred.op, "op_true": task.op, "op_over_runner_up": inferred.over_runner_up,
        "op_over_chance": inferred.over_chance, "op_agreement": inferred.ranked[0][1],
        # the deciding figures (for the thresholds table)
        "share_gap": kf.share_gap,
        "necessity_kept": min((necessity[k] for k in kf.candidates), default=math.nan),
        "necessity_dropped": max((necessity[k] for k in kf.considered if k not in kf.candidates), default=math.nan),
        "restricted_accuracy": kf.restricted_accuracy,
        "verdict_accuracy": verdict.held_out_accuracy,
        "recovered": min(verdict.decisive_recovered.values()) if verdict.decisive_recovered else math.nan,
        "algorithm_share": max(verdict.shares.values()) if verdict.shares else math.nan,
        "signatures": {str(k): v for k, v in signatures.items()},
        "signature_weights": {str(k): weights[k] / total for k in signatures},
        "minimality": claims["minimality"].after if "minimality" in claims else math.nan,
        "completeness": claims["completeness"].after if "completeness" in claims else math.nan,
        "seconds": time.perf_counter() - start,
    }
    return row


def confusion(rows: list[dict]) -> str:
    """The verdict's algorithm against the truth, with how many of each cell are confirmed."""
    truths = sorted({r["truth"] for r in rows}, key=lambda t: (t.startswith(("partial", "memorizing")), t))
    lines = ["| truth \\ verdict | " + " | ".join(ALGORITHMS) + " | members | confirmed |",
             "|---|" + "---|" * (len(ALGORITHMS) + 2)]
    for truth in truths:
        cells = [r for r in rows if r["truth"] == truth]
        counts = Counter(r["algorithm"] for r in cells)
        confirmed = sum(r["confirmed"] for r in cells)
        lines.append(f"| {truth} | " + " | ".join(str(counts.get(a, 0)) for a in ALGORITHMS)
                     + f" | {len(cells)} | {confirmed} |")
    return "\n".join(lines)


def frequency_scores(rows: list[dict]) -> dict:
    """Micro precision and recall of the key frequencies on the generalizing members with a truth, and exact sets."""
    scored = [r for r in rows if r["generalizes"] and r["truth_freqs"] is not None]
    hit = sum(len(set(r["key_freqs"]) & set(r["truth_freqs"])) for r in scored)
    found = sum(len(r["key_freqs"]) for r in scored)
    true = sum(len(r["truth_freqs"]) for r in scored)
    exact = sum(set(r["key_freqs"]) == set(r["truth_freqs"]) for r in scored)
    misses = [(r["name"], r["key_freqs"], r["truth_freqs"]) for r in scored
              if set(r["key_freqs"]) != set(r["truth_freqs"])]
    unresolved = sum(r["generalizes"] and r["truth_freqs"] is None for r in rows)
    return {"members": len(scored), "precision": hit / found if found else math.nan,
            "recall": hit / true if true else math.nan, "exact": exact, "misses": misses, "unresolved": unresolved}


def _range(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    return f"{min(values):.3g} .. {max(values):.3g} ({len(values)})"


def thresholds(rows: list[dict]) -> list[tuple[str, str, str, str, str]]:
    """Per deciding threshold: the population's figures in the two groups it must separate, and how many figures
    fall within its margin."""
    gen = [r for r in rows if r["generalizes"]]
    non = [r for r in rows if not r["generalizes"]]
    out = []

    def add(name, threshold, first, second, margin, kind="ratio"):
        values = [v for _, group in (first, second) for v in group if v == v]
        within = sum(kf_module.within_margin(v, threshold, margin, kind) for v in values)
        band = f"x/{margin:g} .. x{margin:g}" if kind == "ratio" else f"+-{margin:g}"
        out.append((name, f"{threshold:g} ({band})", f"{first[0]}: {_range(first[1])}",
                    f"{second[0]}: {_range(second[1])}", str(within)))

    add("share gap (step 1)", kf_module.MIN_SHARE_GAP,
        ("no circuit (tables, untrained)", [r["share_gap"] for r in rows if r["truth"] == "none"]),
        ("generalizing", [r["share_gap"] for r in gen]), kf_module.MIN_SHARE_GAP_MARGIN)
    add("necessity ratio (step 3)", kf_module.NECESSITY_RATIO,
        ("strongest dropped candidate", [r["necessity_dropped"] for r in rows]),
        ("weakest key frequency, generalizing", [r["necessity_kept"] for r in gen]), kf_module.NECESSITY_MARGIN)
    add("restricted accuracy (step 4)", kf_module.SUFFICIENT_ACCURACY,
        ("'low' candidates", [r["restricted_accuracy"] for r in rows if r["kf_confidence"] == "low"]),
        ("key frequencies found", [r["restricted_accuracy"] for r in rows if r["kf_confidence"] == "high"]),
        kf_module.SUFFICIENT_ACCURACY_MARGIN, "points")
    accuracy = [r["verdict_accuracy"] for r in rows if 0.9 <= r["verdict_accuracy"] < 1.0]
    add("held-out accuracy: generalizes", verdict_module.GENERALIZES_ACCURACY,
        ("members at 90-100% (excl.), below", [v for v in accuracy if v < verdict_module.GENERALIZES_ACCURACY]),
        ("and above", [v for v in accuracy if v >= verdict_module.GENERALIZES_ACCURACY]),
        verdict_module.GENERALIZES_MARGIN, "points")
    add("held-out loss recovered (worst test)", verdict_module.CONFIRM_RECOVERED,
        ("not confirmed for this test alone", [r["recovered"] for r in gen
                                               if r["recovered"] < verdict_module.CONFIRM_RECOVERED]),
        ("generalizing, algorithm named", [r["recovered"] for r in gen if r["algorithm"] != "none"
                                           and r["recovered"] >= verdict_module.CONFIRM_RECOVERED]),
        verdict_module.CONFIRM_RECOVERED_MARGIN, "points")
    add("algorithm share (winning kind)", verdict_module.ALGORITHM_SHARE,
        ("mixed", [r["algorithm_share"] for r in gen if r["algorithm"] == "mixed"]),
        ("clock or pizza", [r["algorithm_share"] for r in gen if r["algorithm"] not in ("mixed", "none")]),
        verdict_module.ALGORITHM_SHARE_MARGIN, "points")
    main = [(v, r["signature_weights"][k]) for r in gen for k, v in r["signatures"].items()]
    add("circle pizzaness (circles with >= 10% of the key energy)", circle_module.CIRCLE_SIGNATURE,
        ("clock circles", [v for v, w in main if v < circle_module.CIRCLE_SIGNATURE and w >= 0.1]),
        ("pizza circles", [v for v, w in main if v >= circle_module.CIRCLE_SIGNATURE and w >= 0.1]),
        verdict_module.CIRCLE_SIGNATURE_MARGIN, "points")
    add("minimality score (weakest key frequency)", 1.0,
        ("generalizing, below 1", [r["minimality"] for r in gen if r["minimality"] < 1]),
        ("generalizing, at least 1", [r["minimality"] for r in gen if r["minimality"] >= 1]),
        claim_module.MINIMALITY_MARGIN)
    add("completeness: accuracy without the key frequencies", claim_module.BROKEN_ACCURACY,
        ("generalizing", [r["completeness"] for r in gen]), ("not generalizing", [r["completeness"] for r in non]),
        claim_module.BROKEN_ACCURACY_MARGIN, "points")
    answered = [r for r in rows if r["group"] != "untrained"]
    for name, key, threshold in (("operation: agreement over the runner-up's", "op_over_runner_up",
                                  OP_OVER_RUNNER_UP),
                                 ("operation: agreement over chance", "op_over_chance", OP_OVER_CHANCE)):
        add(name, threshold, ("untrained", [r[key] for r in rows if r["group"] == "untrained"]),
            ("below 99% of the grid, trained or built", [r[key] for r in answered if r["op_agreement"] < 0.99]),
            OP_MARGIN)
    return out


def report(rows: list[dict]) -> str:
    """Every table, as markdown."""
    gen = [r for r in rows if r["generalizes"]]
    non = [r for r in rows if not r["generalizes"]]
    near = [r for r in gen if r["held_out_accuracy"] < verdict_module.GENERALIZES_ACCURACY]
    scores = frequency_scores(rows)
    ops = [r for r in rows if r["group"] != "untrained"]
    op_right = sum(r["op_inferred"] == r["op_true"] for r in ops)
    untrained = [r for r in rows if r["group"] == "untrained"]
    lines = [f"{len(rows)} members: {len(gen)} generalize (>= {LIU_GENERALIZES:.0%} of held-out pairs), "
             f"{len(non)} do not.", "", confusion(rows), "",
             f"circuit_confirmed: {sum(r['confirmed'] for r in non)} of {len(non)} members that do not generalize "
             f"({sum(r['confirmed'] for r in non) / max(len(non), 1):.0%}); {sum(r['confirmed'] for r in gen)} of "
             f"{len(gen)} that do; of these, {len(near)} answer 90-99% of their held-out pairs "
             f"({sum(r['confirmed'] for r in near)} confirmed).",
             f"confidence: {sum(r['confidence'] == 'borderline' for r in rows)} of {len(rows)} borderline.", "",
             f"key frequencies on {scores['members']} generalizing members with a truth: precision "
             f"{scores['precision']:.3f}, recall {scores['recall']:.3f}, exact set {scores['exact']} of "
             f"{scores['members']}; {scores['unresolved']} generalizing members without a label (no sufficient set "
             "of up to 6 frequencies).",
             *[f"  differs: {name}: found {found}, truth {truth}" for name, found, truth in scores["misses"]], "",
             f"operation read from the answers: right for {op_right} of {len(ops)} trained, planted or memorizing "
             f"members; untrained members refused: {sum(r['op_inferred'] is None for r in untrained)} of "
             f"{len(untrained)}.", "",
             "| threshold | value (margin) | one side | the other side | within the margin |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(t)} |" for t in thresholds(rows)]
    return "\n".join(lines)


def write_fixture(run_dir: Path) -> Path:
    """The last checkpoint of ``run_dir`` (a run of ``modadd-interp sweep examples/sweep_wd_frac.toml
    --weight-decay 3 --seed 1 --frac-train 0.75``), weights, architecture and task only, to :data:`FIXTURE`."""
    from modadd_interp.storage import save_tensors

    last = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))[-1]
    model, task = mi.load(last)
    save_tensors(FIXTURE, tl_adapter.canonical_weights(model),
                 {"config": tl_adapter.model_config(model).to_dict(), "task": task.to_dict()})
    return FIXTURE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a subset, and assert the invariants")
    parser.add_argument("--sweep", type=Path, action="append", default=[], help="a sweep directory (repeatable)")
    parser.add_argument("--json", type=Path, help="write every member's row here")
    parser.add_argument("--only", help="analyze only the members whose name contains this")
    parser.add_argument("--large", action="store_true", help="add the planted p = 1009 pizza (minutes, ~3 GB)")
    parser.add_argument("--write-fixture", type=Path, metavar="RUN_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.write_fixture:
        print(f"wrote {write_fixture(args.write_fixture)}")
        return 0
    members = [m for m in population(args.quick, args.sweep, args.large) if not args.only or args.only in m.name]
    rows, start = [], time.perf_counter()
    for member in members:
        row = analyze_member(member)
        rows.append(row)
        print(f"{row['seconds']:6.1f}s {member.name}: truth {row['truth']} {row['truth_freqs']}; "
              f"{row['line']}", flush=True)
    print()
    print(report(rows))
    print(f"\n{len(rows)} members in {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    if args.quick:
        non = [r for r in rows if not r["generalizes"]]
        assert not any(r["confirmed"] for r in non), "a member that does not generalize was confirmed"
        recall = frequency_scores(rows)["recall"]
        assert recall >= MIN_RECALL, f"key-frequency recall {recall:.3f} < {MIN_RECALL}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
