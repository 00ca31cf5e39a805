"""Where ``analyze`` spends its time: each stage of the analysis in units of one grid pass.

    python benchmarks/stages.py                 # the shipped model
    python benchmarks/stages.py --planted 1009  # the planted circuit of benchmarks/scale.py at p = 1009

Each stage function that ``analyze`` and ``verify_circuit`` call is timed where it is looked up (the module
attribute is wrapped for the duration of the run, then restored); ``grid pass`` is one chunked forward pass
over the grid (``grid.grid_measure``) timed just before, in the same process. Stages nest: ``key_frequencies``
reads the cache that ``grid_cache`` built, and so on. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = {
    "modadd_interp.analysis": ["grid_cache", "probe_attention"],
    "modadd_interp.causal.claims": [
        "key_frequencies", "probe_neurons", "probe_embedding", "probe_logits", "fourier_losses_plan",
        "ablation_table_plan", "hypothesis_tests_plan", "activation_patching", "_nonkey_claim", "zhong_diagnostics",
        "isolate_circles",
    ],
    # the one sweep measuring the Fourier losses', the ablation table's and the hypothesis tests' edits together
    "modadd_interp.probes.cache": ["GridCache.measure_plans"],
}


def peak_rss_mb() -> float:
    """The process's peak resident set so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def timed_stages(seconds: dict[str, float], peaks: dict[str, float] | None = None):
    """Wrap every stage in :data:`STAGES` with a timer adding to ``seconds[name]`` (and the peak RSS when it
    returns to ``peaks[name]``: the stage at which it first jumps is the one that set it); restore them on exit."""
    import importlib

    saved = []
    for module_name, names in STAGES.items():
        module = importlib.import_module(module_name)
        for dotted in names:
            owner, name = module, dotted
            for part in dotted.split(".")[:-1]:  # a method: wrap it on its class
                owner, name = getattr(owner, part), dotted.split(".")[-1]
            original = getattr(owner, name)
            saved.append((owner, name, original))

            @functools.wraps(original)
            def timer(*args, _original=original, _name=dotted, **kwargs):
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - start
                    if peaks is not None:
                        peaks[_name] = peak_rss_mb()

            setattr(owner, name, timer)
    try:
        yield seconds
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planted", type=int, metavar="P", help="the planted circuit at this p (default: shipped)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import modadd_interp as mi
    from modadd_interp import tl_adapter
    from modadd_interp.config import ModelConfig
    from modadd_interp.grid import grid_measure
    from modadd_interp.probes.cache import keep_mode

    if args.planted:
        from benchmarks.scale import planted_paper_weights

        p = args.planted
        model, task = tl_adapter.build_model(ModelConfig.paper(p), planted_paper_weights(p)), mi.ModularTask(p=p)
    else:
        model, task = mi.load()
    _ = task.train_mask
    mi.analyze(model, task) if task.p <= 113 else None  # warm-up (first-call overheads) where it is cheap
    start = time.perf_counter()
    grid_measure(model, task)
    grid = time.perf_counter() - start
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    before = peak_rss_mb()
    with timed_stages(seconds, peaks):
        start = time.perf_counter()
        mi.analyze(model, task)
        total = time.perf_counter() - start
    keep = keep_mode(task.p**2, tl_adapter.model_config(model), task.p)
    print(f"p = {task.p}, keep mode {keep}: one grid pass {grid:.2f} s, analyze {total:.2f} s = {total / grid:.1f} "
          "grid passes")
    print(f"peak RSS before analyze {before:.0f} MB; after each stage (in call order):")
    print("  " + ", ".join(f"{name} {mb:.0f}" for name, mb in peaks.items()))
    print(f"{'stage':24s} {'seconds':>9s} {'grid passes':>12s}")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{name:24s} {s:9.2f} {s / grid:12.2f}")
    if args.json:
        args.json.write_text(json.dumps({"p": task.p, "keep": keep, "grid_pass_seconds": grid,
                                         "analyze_seconds": total, "stages": seconds, "peak_rss_mb": peaks}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
