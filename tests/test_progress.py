"""Progress measures: the phase rule on built frames, every run form, and the shipped series."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from conftest import small_config

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import paper_init
from modadd_interp.progress import detect_phases
from modadd_interp.runs import load_run


def _frame(steps, train_acc, test_loss, test_acc) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, "train_accuracy": train_acc, "test_loss": test_loss,
                         "test_accuracy": test_acc})


def test_phase_rule_finds_the_built_in_transitions():
    steps = list(range(0, 10_000, 100))
    # memorized at 1000; test loss flat at 10 until 4000, then falls log-linearly to 1e-6 at 7500
    train_acc = [min(1.0, s / 1000) for s in steps]
    log_loss = [1.0 if s <= 4000 else max(-6.0, 1.0 - 7.0 * (s - 4000) / 3500) for s in steps]
    test_loss = [10**v for v in log_loss]
    test_acc = [0.05 if s < 6000 else 1.0 for s in steps]
    phases = detect_phases(_frame(steps, train_acc, test_loss, test_acc))
    assert phases["grokked"]
    assert phases["memorization_end"] == 1000
    assert phases["circuit_formation_end"] == 4400  # 10% of the 7-decade fall is reached at 4350
    assert phases["cleanup_end"] == 7200  # 90% (6.3 decades) at 7150
    assert phases["memorization_end"] < phases["circuit_formation_end"] < phases["cleanup_end"]


def test_never_groks_claims_no_phases():
    steps = list(range(0, 5000, 100))
    phases = detect_phases(_frame(steps, [1.0] * len(steps), [20.0 + math.sin(s) for s in steps], [0.03] * len(steps)))
    assert phases["memorization_end"] == 0
    assert phases["circuit_formation_end"] is None and phases["cleanup_end"] is None
    assert not phases["grokked"] and "no grokking" in phases["rule"]
    never_fits = detect_phases(_frame(steps, [0.5] * len(steps), [4.0] * len(steps), [0.01] * len(steps)))
    assert never_fits["memorization_end"] is None and not never_fits["grokked"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    mi.train(mi.ModularTask(p=13, frac_train=0.5), out, config=small_config(13), steps=30, checkpoint_every=10,
             progress=False)
    return out


def test_all_run_forms_give_the_same_series(tiny_run):
    from_dir = load_run(tiny_run)
    assert from_dir.steps == (10, 20, 30) and from_dir.task.p == 13
    paper_style = {"state_dicts": [dict(w) for w in from_dir.weights], "epochs": list(from_dir.steps)}
    pairs = [(s, tl_adapter.build_model(from_dir.config, w)) for s, w in zip(from_dir.steps, from_dir.weights,
                                                                             strict=True)]
    for other in (load_run(paper_style), load_run(pairs)):
        assert other.steps == from_dir.steps
        for a, b in zip(other.weights, from_dir.weights, strict=True):
            assert all(torch.equal(a[k], b[k]) for k in a)
    frames = [mi.progress_measures(src, task=from_dir.task, key_freqs=(1, 2), progress=False)
              for src in (tiny_run, paper_style, pairs)]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    pd.testing.assert_frame_equal(frames[0], frames[2])
    assert list(frames[0].columns[:3]) == ["step", "train_loss", "test_loss"]
    assert {"restricted_loss", "excluded_loss", "gini_we", "gini_wl", "total_sq_weights", "clustered_1"} <= set(
        frames[0].columns)


def test_mixed_p_series_is_refused():
    a = paper_init(small_config(13), 0)
    b = paper_init(small_config(11), 0)
    with pytest.raises(mi.TaskMismatchError, match="p=13.*p=11|p=11.*p=13"):
        load_run([(0, a), (1, b)])


@pytest.mark.slow
def test_shipped_series_phases_match_the_paper_story():
    frame = mi.progress_measures(mi.shipped_run(), progress=False)
    phases, checks = frame.attrs["phases"], frame.attrs["phase_checks"]
    assert phases["grokked"]
    assert phases["memorization_end"] < phases["circuit_formation_end"] < phases["cleanup_end"]
    assert frame.attrs["key_freqs"] and "final checkpoint" in frame.attrs["key_freqs_source"]
    assert checks["train_loss_at_memorization_end"] < 0.05 < checks["test_loss_at_memorization_end"]
    assert checks["excluded_loss_rises_in_circuit_formation"]
    assert checks["restricted_loss_falls_before_test_loss"]
    assert checks["gini_rises_in_cleanup"]


def test_a_dense_series_measured_at_once_equals_each_checkpoint_measured_alone():
    """progress_measures (one model, hooks attached once, weights swapped) equals a fresh model and cache per
    checkpoint, to the last bit, on a 12-checkpoint series interpolated from the shipped run."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from run import dense_series

    from modadd_interp.probes import grid_cache
    from modadd_interp.progress import checkpoint_measures

    run = dense_series(mi.shipped_run(), 12)
    frame = mi.progress_measures(run, progress=False)
    key = tuple(frame.attrs["key_freqs"])
    for row, (step, weights) in zip(frame.to_dict(orient="records"), zip(run.steps, run.weights, strict=True),
                                    strict=True):
        alone = checkpoint_measures(grid_cache(tl_adapter.build_model(run.config, weights), run.task), key)
        assert row == {"step": step, **alone}, step
    assert frame.attrs["phases"] == detect_phases(frame)


def test_progress_without_memory_for_the_logits_reruns_and_agrees(monkeypatch):
    """When the kept logits of the checkpoints measured at once do not fit the memory budget, each checkpoint's
    excluded loss re-runs its grid pass instead: the same frame."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from run import dense_series

    from modadd_interp import progress

    run = dense_series(mi.shipped_run(), 4)
    kept = mi.progress_measures(run, progress=False)
    monkeypatch.setattr(progress, "keep_budget", lambda: 0)
    rerun = mi.progress_measures(run, progress=False)
    assert rerun.equals(kept)


def test_a_checkpoints_measures_have_the_same_bits_at_any_torch_thread_count():
    """progress_measures runs each checkpoint on a thread with one torch thread (progress._in_threads): its measures
    must be the bits a checkpoint gets on any thread count (here 1, 2 and 3, more than CI's cores), on the shipped
    run and on both Clock-and-Pizza fixtures (Model A's restricted loss once differed in its last bit), and
    torch's thread count is restored after."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from run import dense_series

    from modadd_interp.probes import key_frequencies
    from modadd_interp.probes.cache import GridCache
    from modadd_interp.progress import checkpoint_measures

    run = dense_series(mi.shipped_run(), 5)
    cases = [(run.config, weights, run.task, (1, 5, 7, 29)) for weights in run.weights]
    for name in ("model_p99zdpze5l.pt", "model_l8k1hzciux.pt"):
        model, task = mi.load(Path(__file__).parent / "data" / "clock_and_pizza" / name)
        cases.append((tl_adapter.model_config(model), tl_adapter.canonical_weights(model), task,
                      key_frequencies(model, task).freqs))
    threads = torch.get_num_threads()
    try:
        for config, weights, task, keys in cases:
            rows = []
            for count in (1, 2, 3):
                torch.set_num_threads(count)
                rows.append(checkpoint_measures(GridCache.of_weights(config, weights, task), keys))
            assert rows[0] == rows[1] == rows[2]
    finally:
        torch.set_num_threads(threads)
    mi.progress_measures(dense_series(mi.shipped_run(), 3), progress=False)
    assert torch.get_num_threads() == threads


def test_the_clustered_counts_are_the_neuron_probes_clusters_at_the_key_frequencies():
    """checkpoint_measures counts a neuron at k when k's block holds CLUSTER_THRESHOLD of its variance, from the key
    frequencies' blocks alone; the neuron probe clusters by the largest share over every frequency. Above 1/2 the
    two agree: on the shipped run's checkpoints, each count is the probe's cluster size."""
    from modadd_interp.probes import grid_cache, probe_neurons
    from modadd_interp.progress import checkpoint_measures

    run = mi.shipped_run()
    seen = 0
    for weights in run.weights[::7]:
        model = tl_adapter.build_model(run.config, weights)
        cache = grid_cache(model, run.task)
        clusters = probe_neurons(model, run.task, cache=cache).clusters()
        row = checkpoint_measures(cache, (1, 5, 7, 29, 40))
        assert all(row[f"clustered_{k}"] == len(clusters.get(k, [])) for k in (1, 5, 7, 29, 40))
        seen += sum(row[f"clustered_{k}"] for k in (1, 5, 7, 29, 40))
    assert seen > 0  # the comparison saw clustered neurons
