"""Time and peak memory of ``analyze`` as p grows, each run in a fresh process.

    python benchmarks/scale.py                     # p = 113, 257, 509, 1009; both models
    python benchmarks/scale.py --p 113 257 --models random

Models (the paper's architecture: d_model 128, 4 heads of 32, d_mlp 512, no LayerNorm):

* ``random``: the paper's initialisation (seed 0). No key frequencies: the rule stops after
  the logit shares, the claims that need key frequencies fail without interventions.
* ``planted``: a hand-built Fourier circuit (``tests/synthetic.py``: 3 frequencies, 8 phases
  each) zero-padded to the paper's sizes plus 1e-3 x a paper initialisation. It has key
  frequencies, so every analysis runs: the exact excluded-loss search, the Fourier losses, the
  neuron-level ablations.

Each run is a subprocess (``--one P MODEL``) so its peak RSS (``ru_maxrss``) is its own; the
parent prints a table and writes ``benchmarks/scale.json``. Times are wall clock with torch's
default threads; the model build is excluded from the ``analyze`` time but not from the peak RSS.
``analyze / grid pass`` is the ratio to one chunked forward pass over the grid timed just before
(``grid.grid_measure``), in the same process; ``keep`` is the grid cache's keep mode at that size.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def planted_freqs(p: int) -> list[int]:
    """Three frequencies drawn with a seeded generator (seed p)."""
    gen = torch.Generator().manual_seed(p)
    return sorted(int(k) for k in torch.randperm(p // 2, generator=gen)[:3] + 1)


def planted_paper_weights(p: int) -> dict[str, torch.Tensor]:
    """A planted 3-frequency circuit inside the paper's architecture, plus small random weights."""
    sys.path.insert(0, str(ROOT))
    from modadd_interp.config import ModelConfig, paper_init
    from tests.synthetic import planted_model

    small, w = planted_model(p, planted_freqs(p), phases=8)
    cfg = ModelConfig.paper(p)
    out = {name: 1e-3 * t for name, t in paper_init(cfg, seed=1).items()}
    dm, dh, n = small.d_model, small.d_head, small.d_mlp
    out["embed.W_E"][:, :dm] += w["embed.W_E"]
    out["blocks.0.attn.W_V"][0, :dm, :dh] += w["blocks.0.attn.W_V"][0]
    out["blocks.0.attn.W_O"][0, :dh, :dm] += w["blocks.0.attn.W_O"][0]
    out["blocks.0.attn.W_Q"].zero_()
    out["blocks.0.attn.W_K"].zero_()
    out["blocks.0.mlp.W_in"][:dm, :n] += w["blocks.0.mlp.W_in"]
    out["blocks.0.mlp.W_out"][:n, :dm] += w["blocks.0.mlp.W_out"]
    out["unembed.W_U"][:dm] += w["unembed.W_U"]
    return out


def one(p: int, kind: str) -> dict:
    import modadd_interp as mi
    from modadd_interp import tl_adapter
    from modadd_interp.config import ModelConfig, paper_init

    cfg = ModelConfig.paper(p)
    weights = paper_init(cfg, seed=0) if kind == "random" else planted_paper_weights(p)
    model, task = tl_adapter.build_model(cfg, weights), mi.ModularTask(p=p)
    _ = task.train_mask  # the split is part of the task, not of the analysis
    from modadd_interp.grid import grid_measure
    from modadd_interp.probes.cache import keep_mode

    start = time.perf_counter()
    grid_measure(model, task)  # the baseline: one chunked forward pass over the grid, float64 losses
    grid_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = mi.analyze(model, task)
    seconds = time.perf_counter() - start
    return {"p": p, "model": kind, "inputs": p * p, "analyze_seconds": seconds, "grid_pass_seconds": grid_seconds,
            "analyze_per_grid_pass": seconds / grid_seconds, "keep": keep_mode(p * p, cfg, p),
            "algorithm": result["algorithm"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "key_frequencies": result["key_frequencies"], "circuit_confirmed": result["circuit_confirmed"],
            "planted": planted_freqs(p) if kind == "planted" else [],
            "accuracy": result["accuracy"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p", type=int, nargs="+", default=[113, 257, 509, 1009])
    parser.add_argument("--models", nargs="+", default=["random", "planted"], choices=["random", "planted"])
    parser.add_argument("--one", nargs=2, metavar=("P", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("scale.json"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return 0
    rows = []
    print(f"{'p':>6s} {'model':>8s} {'inputs':>10s} {'analyze (s)':>12s} {'/ grid pass':>12s} {'peak RSS (MB)':>14s}"
          "  keep  key freqs (planted)")
    for p in args.p:
        for kind in args.models:
            done = subprocess.run([sys.executable, __file__, "--one", str(p), kind], capture_output=True, text=True,
                                  check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{p:6d} {kind:>8s} {row['inputs']:10,d} {row['analyze_seconds']:12.1f} "
                  f"{row['analyze_per_grid_pass']:11.1f}x {row['peak_rss_mb']:14.0f}  {row['keep']:6s}"
                  f"{row['key_frequencies']} ({row['planted']})", flush=True)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine()}
    args.json.write_text(json.dumps({"machine": machine, "runs": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
