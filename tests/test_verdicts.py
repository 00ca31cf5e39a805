"""The verdict on narrow, dominated, memorizing and borderline models; the operation of a memorizing checkpoint.

The models: the narrow p = 31 run of the issue that made the rule circular (``examples/sweep_wd_frac.toml`` at
weight decay 3, seed 1, training fraction 0.75, its last checkpoint: tests/data/trained/
``narrow_p31_wd3_seed1_ft075.safetensors``, written by ``python benchmarks/verdicts.py --write-fixture RUN_DIR``),
hand-built models with a known truth (``benchmarks/population.py``), and the shipped run's checkpoints.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.causal.verdict import GENERALIZES_ACCURACY, Generalization, decide
from modadd_interp.config import paper_init
from modadd_interp.inference import OP_OVER_CHANCE, OP_OVER_RUNNER_UP, infer_op
from modadd_interp.probes import grid_cache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from population import lookup_table, partial, planted  # noqa: E402

NARROW = Path(__file__).parent / "data" / "trained" / "narrow_p31_wd3_seed1_ft075.safetensors"


@pytest.fixture(scope="module")
def narrow():
    model, task = mi.load(NARROW)
    return model, task, mi.verify_circuit(model, task)


def test_the_narrow_p31_run_is_a_confirmed_clock_at_its_two_key_frequencies(narrow):
    """14 carries 98% of the logits and 15 1.4%: the largest share gap (69x) leaves 15 below it. The rule adds 15
    because 14 alone falls short of the model on held-out pairs, and 14 is not dropped (the earlier rule's floor was
    15's rise, which made [14] fail)."""
    _, task, report = narrow
    kf = report.key_frequencies
    assert (task.p, task.frac_train, task.seed) == (31, 0.75, 1)
    assert kf.freqs == (14, 15) and kf.confidence == "high"
    assert "[15] joined them in share order" in kf.reason and "dropped" not in kf.reason
    share = kf.evidence["logit_share"]
    assert float(share[13]) > 0.95 and 0.005 < float(share[14]) < 0.05  # one frequency dominates
    assert min(kf.necessity().values()) > 100  # both far above the floor: not a borderline call
    verdict = report.verdict
    assert verdict.algorithm == "clock" and verdict.confirmed and verdict.generalizes
    assert verdict.line.startswith("clock at k = [14, 15]:") and "circuit confirmed" in verdict.line
    assert min(verdict.loss_recovered_by_split["held_out"].values()) >= 0.99


def test_a_planted_model_with_one_dominant_frequency_is_read_whole():
    cfg, w = planted(31, {14: "clock", 15: "clock"}, scales={14: 30.0, 15: 4.0})
    model = tl_adapter.build_model(cfg, w)
    report = mi.verify_circuit(model, mi.ModularTask(p=31))
    assert float(report.key_frequencies.evidence["logit_share"][13]) > 0.95
    assert report.key_freqs == (14, 15) and report.algorithm == "clock" and report.passed, report.verdict.line


def test_a_soft_three_frequency_pizza_passes_minimality_in_terms_of_loss_recovered():
    """At a loss near 1 nat (a soft readout, like the planted p = 1009 pizza) removing one circle cannot raise the
    loss ten-fold past a uniform guess; the minimality claim still passes, on the loss it costs."""
    cfg, w = planted(59, {3: "pizza", 15: "pizza", 17: "pizza"}, scales={3: 2.5, 15: 2.5, 17: 2.5})
    model = tl_adapter.build_model(cfg, w)
    task = mi.ModularTask(p=59)
    report = mi.verify_circuit(model, task)
    full = report.losses.full
    assert 0.3 < full.train_loss < 2.0
    excluded = min(m.train_loss for m in report.losses.excluded.values())
    assert excluded < 10 * full.train_loss  # the earlier claim (10x the training loss) would fail
    minimality = next(c for c in report.claims if c.name.startswith("minimality"))
    assert minimality.passed and minimality.after >= 2, minimality.detail
    assert report.algorithm == "pizza" and report.passed, report.verdict.line


def test_a_memorizer_with_a_forming_circuit_is_a_partial_clock_never_confirmed():
    """A planted clock at a small scale beside a lookup table: the table answers the training pairs, the circuit
    some of the held-out ones. Its key frequencies are found on the held-out pairs (on the training pairs the table
    hides them) and the line says it is partial."""
    cfg, w, task = partial(31, {4: "clock", 9: "clock"}, 3.0)
    report = mi.verify_circuit(tl_adapter.build_model(cfg, w), task)
    verdict = report.verdict
    assert report.key_freqs == (4, 9) and verdict.algorithm == "clock"
    assert not verdict.confirmed and not verdict.generalizes and verdict.held_out_accuracy < 0.6
    assert verdict.line.startswith("partial clock at k = [4, 9]: recovers ")
    assert f"the model answers {verdict.held_out_accuracy:.1%} of them" in verdict.line
    assert "it does not generalize" in verdict.reason
    train = report.losses.full.train_accuracy
    assert train == 1.0  # memorized


def test_the_shipped_run_memorizing_with_its_circuit_forming_is_not_confirmed():
    run = mi.shipped_run()
    step = run.steps.index(5000)
    model = tl_adapter.build_model(run.config, run.weights[step])
    verdict = mi.verify_circuit(model, run.task).verdict
    assert verdict.algorithm != "none" and not verdict.confirmed and not verdict.generalizes
    assert verdict.line.startswith(f"partial {verdict.algorithm} at k = [5, 7, 29]")
    assert "it does not generalize (64.9% of held-out pairs answered" in verdict.reason


def test_a_lookup_table_has_no_circuit():
    cfg, w, task = lookup_table(23, 0.3)
    report = mi.verify_circuit(tl_adapter.build_model(cfg, w), task)
    assert report.algorithm == "none" and not report.passed
    assert report.verdict.line.startswith("not confirmed: no frequency stands out in the logits")
    assert report.losses.full.train_accuracy == 1.0 and report.losses.full.test_accuracy < 0.05


def test_a_figure_near_its_threshold_is_borderline_and_named(narrow):
    """The same evidence with a held-out accuracy just above and just below the threshold: the verdict follows the
    threshold, and both say the figure is near it; far from it, the verdict is clear."""
    _, _, report = narrow
    claims = [c for c in report.claims if c.decides][:2]
    args = (report.key_frequencies, report.circles, report.hypotheses, claims)
    clear = decide(*args, held_out=Generalization(1.0, 240))
    above = decide(*args, held_out=Generalization(GENERALIZES_ACCURACY + 0.002, 240))
    below = decide(*args, held_out=Generalization(GENERALIZES_ACCURACY - 0.002, 240))
    assert clear.confidence == "clear" and clear.borderline == () and clear.confirmed
    assert above.confirmed and not below.confirmed
    for verdict in (above, below):
        assert verdict.confidence == "borderline"
        assert f"{GENERALIZES_ACCURACY:.0%} that says it generalizes" in verdict.borderline[0]
        assert "borderline: " in verdict.line
    assert below.line.startswith("partial clock at k = [14, 15]")


def test_a_loss_recovered_near_its_threshold_is_borderline(narrow):
    _, _, report = narrow
    weak = {}
    for name, test in report.hypotheses.items():
        # the MLP-output test at 96% of the held-out loss recovered: (L_base - L) / (L_base - L_clean) = 0.96
        base, clean = test.mlp_baseline, test.full
        loss = dataclasses.replace(test.mlp_out, test_loss=base.test_loss - 0.96 * (base.test_loss - clean.test_loss))
        weak[name] = dataclasses.replace(test, mlp_out=loss)
    verdict = decide(report.key_frequencies, report.circles, weak, [c for c in report.claims if c.decides],
                     held_out=Generalization(1.0, 240))
    assert verdict.confirmed and verdict.confidence == "borderline"
    assert any("mlp_out test recovers 96.0% of the held-out loss, near the 95%" in b for b in verdict.borderline)


def test_the_json_has_per_split_figures_and_the_generalization(narrow):
    model, task, report = narrow
    cache = grid_cache(model, task)
    out = mi.analyze(model, task, cache=cache, circuit=mi.verify_circuit(model, task, cache=cache))
    assert out["generalizes"] is True and out["circuit_confirmed"] is True
    by_split = out["loss_recovered_by_split"]["clock"]
    assert set(by_split) == {"train", "held_out"}
    assert set(by_split["held_out"]) == {"logits", "mlp_out", "resampling"}
    assert by_split["train"] != by_split["held_out"]  # two splits, two figures
    assert out["verdict"]["confidence"] in ("clear", "borderline") and out["verdict"]["generalizes"] is True
    assert out["verdict"]["loss_recovered_by_split"]["held_out"] == by_split["held_out"]
    decides = [c for c in out["claims"] if c["decides"]]
    assert all(c["margin"] is not None for c in decides if c["applicable"])


def test_the_json_of_a_model_whose_split_is_unknown_says_so():
    out = mi.analyze(*mi.load(Path(__file__).parent / "data" / "clock_and_pizza" / "model_p99zdpze5l.pt"))
    assert out["generalizes"] is True and out["verdict"]["basis"] == "the grid (split unknown)"
    assert out["loss_recovered_by_split"]["pizza"] == {"train": None, "held_out": None}


# ------------------------------------------------------------------ the operation of a memorizing checkpoint
def _bare(model, path: Path) -> Path:
    """A bare TL 4 bridge state dict: it records neither the operation nor the split."""
    cfg = tl_adapter.model_config(model)
    bridge = tl_adapter.build_model(cfg, tl_adapter.canonical_weights(model), backend="bridge")
    torch.save({k: v.clone() for k, v in bridge.state_dict().items()}, path)
    return path


def test_the_operation_of_a_memorizing_checkpoint_is_read_from_the_pairs_it_gets_right(tmp_path):
    run = mi.shipped_run()
    model = tl_adapter.build_model(run.config, run.weights[run.steps.index(1000)])
    with pytest.warns(UserWarning, match=r"does not generalize; op inferred from the pairs it gets right: 'add' "
                                         r".*x the runner-up .*x chance \(1/p = 0.9%\)"):
        _, task = mi.load(_bare(model, tmp_path / "step1000.pt"))
    assert (task.op, task.op_source) == ("add", "inferred")
    inferred = infer_op(model, run.config)
    assert not inferred.generalizes and 0.2 < inferred.ranked[0][1] < 0.5
    assert inferred.over_runner_up > 5 * OP_OVER_RUNNER_UP and inferred.over_chance > 5 * OP_OVER_CHANCE


@pytest.mark.parametrize("op", ["sub", "mul", "div"])
def test_a_memorizer_of_each_operation_is_read_as_it(op):
    cfg, w, _ = lookup_table(23, 0.3, op=op)
    inferred = infer_op(tl_adapter.build_model(cfg, w), cfg)
    assert inferred.op == op and not inferred.generalizes and not inferred.borderline
    assert inferred.over_runner_up >= OP_OVER_RUNNER_UP and inferred.over_chance >= OP_OVER_CHANCE


def test_an_untrained_checkpoint_is_refused_with_the_margins(tmp_path):
    cfg = mi.ModelConfig.paper(31, d_model=32, d_head=8, d_mlp=128)
    model = tl_adapter.build_model(cfg, paper_init(cfg, seed=4))
    inferred = infer_op(model, cfg)
    assert inferred.op is None and inferred.over_runner_up < OP_OVER_RUNNER_UP / 1.4
    match = r"nor does one stand out in the pairs it gets right .*x the runner-up .*, where 2x and 3x are needed"
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.load(_bare(model, tmp_path / "untrained.pt"))
