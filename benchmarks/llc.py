"""Benchmark: one LLC estimate at the default sampler settings, as a ratio against one grid forward pass.

    python benchmarks/llc.py                        # prints the figures, writes benchmarks/llc_results.json
    python benchmarks/llc.py --json out.json        # elsewhere

Both are timed on the shipped grokked p = 113 model in this process at torch's default thread count:
``forward`` is one ``model.run_with_cache(task.inputs)`` over the full (a, b) grid (median of 5 after a
warm-up); ``llc`` is one :func:`modadd_interp.slt.llc` at its defaults (one run: it is deterministic, and
long enough that one run is a fair figure). Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import modadd_interp as mi
from modadd_interp import slt


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "llc_results.json")
    args = parser.parse_args(argv)
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
        "python": sys.version.split()[0], "machine": platform.machine(),
    }
    print(f"one grid forward pass (run_with_cache): {forward * 1e3:.1f} ms")
    ratio = llc_seconds / forward
    print(f"one LLC estimate at the defaults:       {llc_seconds:.1f} s  ({ratio:.0f}x the forward pass)")
    print(f"LLC = {estimate.mean:.2f} ± {estimate.std:.2f} (healthy: {estimate.healthy})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
