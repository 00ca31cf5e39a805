"""Benchmark: the calibrated LLC (``slt.llc(lr="auto")``), on one model and over the shipped run.

    python benchmarks/llc.py                  # one estimate at the grokked endpoint; writes benchmarks/llc_results.json
    python benchmarks/llc.py --series         # also progress_measures(shipped run, llc=True): total time, every row
    python benchmarks/llc.py --json out.json  # elsewhere

Timed in this process at torch's current thread count (``OMP_NUM_THREADS`` / ``--threads``):
``forward`` is one ``model.run_with_cache(task.inputs)`` over the full (a, b) grid (median of 5 after a
warm-up); ``llc`` is one :func:`modadd_interp.slt.llc` at its defaults on the shipped grokked model (one
run: it is deterministic, and long enough that one run is a fair figure); ``series`` is one
``progress_measures(mi.shipped_run(), llc=True)`` (29 checkpoints: the LLC, the degeneracy measures and the
progress measures), with its CPU time (all threads) beside the wall time. The load average before and
after is recorded: the machine is shared, and a busy machine slows a run several-fold. Timings are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

import modadd_interp as mi
from modadd_interp import slt

ROW_COLUMNS = ("step", "llc_mean", "llc_std", "llc_healthy", "llc_reasons", "llc_lr", "llc_lr2", "llc_at_lr",
               "llc_at_lr2", "llc_localization", "llc_n_beta", "llc_tries")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "llc_results.json")
    parser.add_argument("--series", action="store_true", help="also time the LLC over the shipped run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    model, task = mi.load()
    with torch.no_grad():
        model.run_with_cache(task.inputs)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            model.run_with_cache(task.inputs)
            times.append(time.perf_counter() - start)
    forward = statistics.median(times)
    start = time.perf_counter()
    estimate = slt.llc(model, task)
    llc_seconds = time.perf_counter() - start
    result = {
        "forward_seconds": forward, "llc_seconds": llc_seconds, "llc_over_forward": llc_seconds / forward,
        "estimate": estimate.to_dict(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count(),
    }
    print(f"one grid forward pass (run_with_cache): {forward * 1e3:.1f} ms")
    print(f"one calibrated LLC estimate:            {llc_seconds:.1f} s  ({llc_seconds / forward:.0f}x the forward "
          f"pass; {estimate.hyperparameters['tries']} sampling runs)")
    print(f"LLC = {estimate.mean:.3g} ± {estimate.std:.2g} at lr pair {estimate.hyperparameters['lr_pair']} "
          f"(healthy: {estimate.healthy})")
    if args.series:
        start, cpu_start = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unhealthy rows are in the table, with their reasons
            frame = mi.progress_measures(mi.shipped_run(), llc=True, progress=False)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        rows = frame[list(ROW_COLUMNS)].to_dict(orient="records")
        result["series"] = {"seconds": seconds, "cpu_seconds": cpu_seconds, "checkpoints": len(frame),
                            "healthy": int(frame["llc_healthy"].sum()), "rows": rows}
        print(f"progress_measures(shipped run, llc=True): {seconds / 60:.1f} min wall, {cpu_seconds / 60:.1f} min "
              f"CPU, for {len(frame)} checkpoints, {result['series']['healthy']} healthy")
        for row in rows:
            verdict = "healthy" if row["llc_healthy"] else "UNHEALTHY"
            print(f"  step {row['step']:5d}: LLC {row['llc_mean']:8.3g} ± {row['llc_std']:6.2g}  lr {row['llc_lr']:.3g}"
                  f" / {row['llc_lr2']:.3g}  tries {row['llc_tries']}  {verdict}")
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
