"""Benchmarks: each figure is a ratio against a baseline measured in the same run.

    python benchmarks/run.py            # full: several repeats, writes benchmarks/results.json
    python benchmarks/run.py --quick    # CI: one repeat, smaller training sample; no assertions

Figures (median wall time over repeats, this process, torch's default threads):

* ``forward``: the baseline, one ``run_with_cache`` over the full (a, b) grid of the shipped model;
* ``probes``: one grid cache + every probe (key frequencies, embedding, neurons, attention, logits);
* ``verify_circuit``: the full causal report (claims, losses, ablation table, patching);
* ``key_frequencies`` (the whole rule, causal evidence included) and ``neuron_clusters`` (the
  neuron spectra and clusters alone) against ``loop_baseline``: a per-neuron, per-frequency
  Python loop in the shape of the paper's ``calculate_key_freqs``. All three start from the
  neuron activations over the grid (``[p*p, d_mlp]``, recorded once): the two timed figures
  include reducing them to 3x3 frequency blocks (:class:`BlockSpectrum`), which the grid
  cache otherwise does during its pass;
* ``progress_measures`` over the shipped series (29 checkpoints), and over a dense series of 200
  checkpoints of the same run's shape (:func:`dense_series`: the weights interpolated linearly between the
  shipped checkpoints at 200 evenly spaced steps), each against one ``analyze``: the median of ``analyze`` timed
  just before and just after each progress run (:func:`timed_between`; this machine's speed drifts by up to
  20% over a minute, and a baseline measured minutes earlier would carry that drift into the ratio);
* ``analyze_2layer``: ``analyze`` of a 2-layer p = 59 model of the Clock-and-Pizza family
  (tests/data/trained/family_2layer_p59.safetensors), against one grid pass of that model;
* ``train_step``: seconds per full-batch training step at p = 113 (paper recipe);
* ``peak_rss_mb``: the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import modadd_interp as mi
from modadd_interp.fourier import BlockSpectrum, fourier_basis, freq_rows, neuron_spectrum
from modadd_interp.grid import grid_run
from modadd_interp.hook_names import hook_name
from modadd_interp.probes import grid_cache


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (after one warm-up for repeats > 1)."""
    if repeats > 1:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_between(fn, baseline, repeats: int) -> tuple[float, float]:
    """``(wall time of fn(), median wall time of baseline())``: ``fn`` run ``repeats`` times, each run between two
    runs of ``baseline``; the figure is the median of ``fn``'s runs."""
    times, around = [], [timed(baseline, 1)]
    for _ in range(repeats):
        times.append(timed(fn, 1))
        around.append(timed(baseline, 1))
    return statistics.median(times), statistics.median(around)


def loop_key_frequencies(neurons: torch.Tensor, p: int, threshold: float = 0.85) -> list[int]:
    """The straightforward baseline: for each neuron, for each frequency, the share of its variance
    in that frequency's 3x3 block of the dense 2D Fourier transform; clusters; their frequencies."""
    basis = fourier_basis(p)
    counts: dict[int, int] = {}
    for n in range(neurons.shape[1]):
        grid = neurons[:, n].double().reshape(p, p)
        grid = grid - grid.mean()
        coeffs = basis @ grid @ basis.T
        total = float((coeffs**2).sum())
        best, best_share = 0, 0.0
        for k in range(1, p // 2 + 1):
            rows = [0, *freq_rows(p, k)]
            block = coeffs[rows][:, rows]
            share = (float((block**2).sum()) - float(block[0, 0] ** 2)) / total if total else 0.0
            if share > best_share:
                best, best_share = k, share
        if best_share >= threshold:
            counts[best] = counts.get(best, 0) + 1
    return sorted(counts)


def spectra(neurons: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Neuron activations ``[p*p, n]`` to shares and trig fits: the vectorised path of the grid cache."""
    spectrum = BlockSpectrum(p, neurons.shape[1])
    spectrum.add(neurons.reshape(p, p, -1), torch.arange(p))
    return neuron_spectrum(spectrum.blocks(), spectrum.mean, spectrum.variance, p)


def probes(model, task) -> None:
    cache = grid_cache(model, task)
    kf = mi.key_frequencies(model, task, cache=cache)
    mi.probe_neurons(model, task, cache=cache)
    mi.probe_embedding(model, task, key_freqs=kf.freqs, cache=cache)
    mi.probe_attention(model, task, cache=cache)
    mi.probe_logits(model, task, key_freqs=kf.freqs, cache=cache)


def dense_series(run, count: int = 200):
    """A ``count``-checkpoint series of ``run``'s shape: weights interpolated linearly between its checkpoints."""
    import dataclasses

    steps = torch.linspace(run.steps[0], run.steps[-1], count).round().long().unique().tolist()
    weights = []
    for step in steps:
        right = next(i for i, s in enumerate(run.steps) if s >= step)
        left = max(right - 1, 0)
        span = run.steps[right] - run.steps[left]
        t = (step - run.steps[left]) / span if span else 0.0
        weights.append({k: (1 - t) * run.weights[left][k] + t * run.weights[right][k] for k in run.weights[0]})
    return dataclasses.replace(run, steps=tuple(steps), weights=tuple(weights), history=None)


def grid_pass(model, task) -> None:
    """One forward pass over the whole grid, chunked (the baseline of the other benchmarks' ratios)."""
    from modadd_interp.grid import grid_measure

    grid_measure(model, task)


def train_step_seconds(steps: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        task = mi.ModularTask(p=113)
        start = time.perf_counter()
        mi.train(task, out, steps=steps, checkpoint_every=10**9, eval_every=10**9, progress=False)
        return (time.perf_counter() - start) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat each (for CI)")
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    model, task = mi.load()
    cache = grid_cache(model, task)
    dense = dense_series(mi.shipped_run(), 50 if args.quick else 200)
    two_layer = mi.load(Path(__file__).resolve().parents[1] / "tests" / "data" / "trained"
                        / "family_2layer_p59.safetensors")
    post = hook_name("post")
    neurons = grid_run(model, task, [post], select={post: lambda a: a[:, -1]})[1][post]

    def key_frequencies() -> None:
        spectra(neurons, task.p)
        mi.key_frequencies(model, task, cache=cache)

    seconds = {
        "forward": timed(lambda: model.run_with_cache(task.inputs), repeats),
        "probes": timed(lambda: probes(model, task), repeats),
        "verify_circuit": timed(lambda: mi.verify_circuit(model, task), repeats),
        "key_frequencies": timed(key_frequencies, repeats),
        "neuron_clusters": timed(lambda: spectra(neurons, task.p), repeats),
        "loop_baseline": timed(lambda: loop_key_frequencies(neurons, task.p), 1),
        "analyze": timed(lambda: mi.analyze(model, task), repeats),
    }

    def analyze_shipped() -> None:
        mi.analyze(model, task)

    for name, series in (("progress_measures", mi.shipped_run()), ("progress_measures_200", dense)):
        seconds[name], seconds[f"analyze_around_{name}"] = timed_between(
            lambda series=series: mi.progress_measures(series, progress=False), analyze_shipped, 1 if args.quick else 2)
    seconds |= {
        "grid_pass_2layer": timed(lambda: grid_pass(*two_layer), repeats),
        "analyze_2layer": timed(lambda: mi.analyze(*two_layer), repeats),
        "train_step": train_step_seconds(5 if args.quick else 30),
    }
    ratios = {
        "probes / forward": seconds["probes"] / seconds["forward"],
        "verify_circuit / forward": seconds["verify_circuit"] / seconds["forward"],
        "loop_baseline / key_frequencies": seconds["loop_baseline"] / seconds["key_frequencies"],
        "loop_baseline / neuron_clusters": seconds["loop_baseline"] / seconds["neuron_clusters"],
        "progress_measures / analyze": seconds["progress_measures"] / seconds["analyze_around_progress_measures"],
        "progress_measures_200 / analyze": (seconds["progress_measures_200"]
                                            / seconds["analyze_around_progress_measures_200"]),
        "analyze_2layer / grid_pass_2layer": seconds["analyze_2layer"] / seconds["grid_pass_2layer"],
    }
    result = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
        "quick": args.quick, "repeats": repeats, "seconds": seconds, "ratios": ratios,
        "checkpoints_in_series": len(mi.shipped_run()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"{'figure':34s} {'value':>10s}")
    for name, value in seconds.items():
        print(f"{name + ' (s)':34s} {value:10.3f}")
    for name, value in ratios.items():
        print(f"{name:34s} {value:10.1f}x")
    print(f"{'peak RSS (MB)':34s} {result['peak_rss_mb']:10.0f}")
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
