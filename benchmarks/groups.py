"""Time, grid passes and peak memory of ``analyze`` on a non-cyclic group, each run in a fresh process.

    python benchmarks/groups.py                    # S4, S5 (d_mlp 512) and S6 (d_mlp 2048)
    python benchmarks/groups.py --groups S4        # the quick row CI runs

The model is a planted representation clock (``tests/synthetic.py``, ``planted_group_model``: each element embedded as
its standard irrep's matrix, attention copying the operands, random ReLU neurons read out by least squares onto
``R(x) R(y)``, ``W_U`` reading ``χ(x y z⁻¹)``), so the key-irrep rule finds an irrep and every claim runs its
intervention. ``grid passes`` counts the inputs the weight pass (or the model) ran, over ``|G|²``; ``analyze /
grid pass`` is the time against one chunked forward pass over the grid timed just before, in the same process. The
model is built (a least-squares fit) in a process of its own and saved, so the peak RSS is the analysis's.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
D_MLP = {"S4": 512, "S5": 512, "S6": 2048}


def build(name: str, path: Path) -> None:
    """Plant the model and save its config and weights to ``path``."""
    sys.path.insert(0, str(ROOT))
    from modadd_interp import groups
    from tests.synthetic import planted_group_model

    start = time.perf_counter()
    cfg, weights = planted_group_model(groups.by_name(name), "standard", d_mlp=D_MLP.get(name, 512))
    torch.save({"config": cfg.to_dict(), "weights": weights, "seconds": time.perf_counter() - start}, path)


def one(name: str, path: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    import modadd_interp as mi
    from modadd_interp import groups, tl_adapter
    from modadd_interp.config import ModelConfig
    from modadd_interp.grid import grid_measure
    from modadd_interp.probes import weight_pass
    from modadd_interp.probes.cache import keep_mode

    group = groups.by_name(name)
    saved = torch.load(path, weights_only=True)
    cfg, weights, build_seconds = ModelConfig(**saved["config"]), saved["weights"], saved["seconds"]
    model, task = tl_adapter.build_model(cfg, weights), mi.ModularTask(p=group.order, op=name)
    _ = task.train_mask
    start = time.perf_counter()
    grid_measure(model, task)
    grid_seconds = time.perf_counter() - start
    counted = {"inputs": 0}
    original = weight_pass.WeightPass.run

    def counting(self, tokens):
        counted["inputs"] += len(tokens)
        return original(self, tokens)

    weight_pass.WeightPass.run = counting
    start = time.perf_counter()
    result = mi.analyze(model, task)
    seconds = time.perf_counter() - start
    return {"group": name, "order": group.order, "inputs": group.order**2, "d_mlp": cfg.d_mlp,
            "build_seconds": build_seconds, "analyze_seconds": seconds, "grid_pass_seconds": grid_seconds,
            "analyze_per_grid_pass": seconds / grid_seconds, "grid_passes": counted["inputs"] / group.order**2,
            "keep": keep_mode(group.order**2, cfg, group.order),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "planted": group.irrep("standard").name, "key_irreps": [r["name"] for r in result["key_irreps"]],
            "verdict": result["verdict"]["line"], "accuracy": result["accuracy"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", nargs="+", default=["S4", "S5", "S6"])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("groups.json"))
    args = parser.parse_args()
    if args.build:
        build(args.build[0], Path(args.build[1]))
        return 0
    if args.one:
        print(json.dumps(one(args.one[0], Path(args.one[1]))))
        return 0
    rows = []
    print(f"{'group':>6s} {'inputs':>9s} {'d_mlp':>6s} {'analyze (s)':>12s} {'/ grid pass':>12s} {'passes':>7s} "
          f"{'peak RSS (MB)':>14s}  keep  key irreps (planted)  accuracy")
    for name in args.groups:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.pt"
            subprocess.run([sys.executable, __file__, "--build", name, str(path)], check=True)
            done = subprocess.run([sys.executable, __file__, "--one", name, str(path)], capture_output=True, text=True,
                                  check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{name:>6s} {row['inputs']:9,d} {row['d_mlp']:6d} {row['analyze_seconds']:12.1f} "
              f"{row['analyze_per_grid_pass']:11.1f}x {row['grid_passes']:7.2f} {row['peak_rss_mb']:14.0f}  "
              f"{row['keep']:6s}{row['key_irreps']} ({row['planted']})  {row['accuracy']:.4f}", flush=True)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine()}
    args.json.write_text(json.dumps({"machine": machine, "runs": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
