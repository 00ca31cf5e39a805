"""Sweep throughput: runs per hour, serial against Ray local, measured in one run; and the batched probe.

    python benchmarks/sweep.py            # 8 cells at p = 31 (d_model 64, d_mlp 256, 1000 steps), then the S5 MLP row
    python benchmarks/sweep.py --quick    # 4 cells at p = 23 (d_model 32, d_mlp 128, 200 steps)
    python benchmarks/sweep.py --only s5-mlp --s5-steps 300   # the S5 MLP row alone

The **S5 MLP row** is 8 seeds of one cell: Chughtai et al.'s one-hidden-layer MLP on S5 (``group="S5"``,
``model="mlp"``, d_embed 128, d_mlp 128, lr 1e-2, weight decay 1, training fraction 0.6, no warmup), serial
against Ray local, ``--s5-steps`` steps each (it groks in 825-1825 steps at about 60 ms per step on one thread,
so a full run is ~12 minutes serial for 8 seeds; the default budget is shorter and the figure says how many).

Figures (nothing is asserted; a shared machine moves absolute times, so read the ratios):

* ``serial``: ``mi.sweep(..., executor="serial")``, one cell after another in this process, 1 torch thread;
* ``ray_local``: ``mi.sweep(..., executor="ray")`` on a local Ray started by the sweep with every CPU of the
  machine, 1 CPU (and thread) per cell; its wall time includes starting Ray and its workers;
* ``batched_probe``: the question whether several cells of the same shape should train in one process.
  ``torch.func.stack_module_state`` + ``vmap(grad(...))`` over ``functional_call`` of the model computes the
  gradients of all cells in one call; the probe times it against the cells' forward+backward one after
  another (one thread) and checks whether the gradients are bit-identical to training each cell alone.
  The sweep keeps batching only if it is both faster and bit-identical; it is not (see docs/sweeps.md),
  so there is no batched executor and no batched runs-per-hour figure.

Every cell trains and analyzes the same way (``run_cell``: train, ``analyze``, ``progress_measures``), so a
run per hour here is a whole row of the results table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import paper_init


def spec_for(args: argparse.Namespace) -> dict:
    """The benchmark's sweep: ``cells`` seeds of one configuration."""
    return {"p": args.p, "seed": list(range(args.cells)), "frac_train": 0.5, "lr": 3e-3, "steps": args.steps,
            "d_model": args.d_model, "d_mlp": args.d_mlp, "checkpoint_every": max(args.steps // 20, 1)}


def s5_mlp_spec(cells: int, steps: int) -> dict:
    """The S5 MLP row's sweep: ``cells`` seeds of Chughtai et al.'s MLP on S5 (the recipe measured to grok)."""
    return {"group": "S5", "model": "mlp", "d_embed": 128, "d_mlp": 128, "lr": 1e-2, "weight_decay": 1.0,
            "frac_train": 0.6, "warmup_steps": 0, "seed": list(range(cells)), "steps": steps,
            "checkpoint_every": max(steps // 10, 1)}


def serial_against_ray(spec: dict, tmp: Path, name: str) -> dict:
    """One spec swept serially, then on a local Ray, into fresh directories; Ray's figure as a ratio to serial."""
    row = {"serial": run_sweep(spec, tmp / f"{name}_serial", "serial")}
    try:
        row["ray_local"] = run_sweep(spec, tmp / f"{name}_ray", "ray")
        row["ray_against_serial"] = row["ray_local"]["runs_per_hour"] / row["serial"]["runs_per_hour"]
    except mi.ModAddError as e:  # Ray not installed: the serial figure still stands
        row["ray_local"] = {"error": str(e)}
    return row


def run_sweep(spec: dict, out: Path, executor: str) -> dict:
    """Wall time and runs per hour of one sweep into a fresh directory."""
    start = time.perf_counter()
    table = mi.sweep(spec, out, executor=executor, progress=False, num_cpus=os.cpu_count())
    wall = time.perf_counter() - start
    assert (table["status"] == "ok").all(), table["error"].dropna().tolist()
    return {"wall_seconds": wall, "runs": len(table), "runs_per_hour": len(table) / wall * 3600,
            "train_seconds_per_run": float(table["train_seconds"].mean()),
            "analysis_seconds_per_run": float(table["analysis_seconds"].mean())}


def batched_probe(p: int, d_model: int, d_mlp: int, cells: int, steps: int = 20) -> dict:
    """Forward+backward of ``cells`` same-shape models: one after another, against one vmap call."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = mi.ModelConfig.paper(p, d_model=d_model, d_head=d_model // 4, d_mlp=d_mlp)
        task = mi.ModularTask(p, frac_train=0.5)
        x, y = cfg.encode(task.pairs)[task.train_mask], task.labels[task.train_mask]
        models = [tl_adapter.build_model(cfg, paper_init(cfg, seed)) for seed in range(cells)]
        for model in models:
            model.train()

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return -logits[:, -1, :p].double().log_softmax(-1).gather(1, y[:, None]).mean()

        start = time.perf_counter()
        for _ in range(steps):
            for model in models:
                model.zero_grad(set_to_none=True)
                loss(model(x)).backward()
        one_by_one = (time.perf_counter() - start) / steps
        alone = [{k: v.grad.clone() for k, v in m.named_parameters() if v.grad is not None} for m in models]

        params, buffers = stack_module_state(models)
        all_grads = vmap(grad(lambda pr, bu: loss(functional_call(models[0], (pr, bu), (x,)))), in_dims=(0, 0))
        start = time.perf_counter()
        for _ in range(steps):
            grads = all_grads(params, buffers)
        batched = (time.perf_counter() - start) / steps
        identical = all(torch.equal(grads[k][i], alone[i][k]) for i in range(cells) for k in alone[i])
        diff = max(float((grads[k][i] - alone[i][k]).abs().max()) for i in range(cells) for k in alone[i])
    finally:
        torch.set_num_threads(previous)
    return {"cells": cells, "step_seconds_one_by_one": one_by_one, "step_seconds_batched": batched,
            "speedup": one_by_one / batched, "bit_identical": identical, "max_grad_difference": diff,
            "kept": bool(identical and one_by_one / batched > 1)}


def print_row(title: str, row: dict) -> None:
    """The serial and Ray lines of one row."""
    serial, ray_local = row["serial"], row["ray_local"]
    print(title)
    print(f"  serial:    {serial['runs_per_hour']:7.0f} runs/hour ({serial['wall_seconds']:.1f} s; per run: "
          f"train {serial['train_seconds_per_run']:.1f} s, analysis {serial['analysis_seconds_per_run']:.1f} s)")
    if "runs_per_hour" in ray_local:
        print(f"  ray local: {ray_local['runs_per_hour']:7.0f} runs/hour ({ray_local['wall_seconds']:.1f} s, with "
              f"Ray's start-up) = {row['ray_against_serial']:.2f}x serial")
    else:
        print(f"  ray local: not measured ({ray_local['error']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 tiny cells (for CI)")
    parser.add_argument("--only", choices=("paper", "s5-mlp"), help="run one row only")
    parser.add_argument("--s5-steps", type=int, default=300, help="steps per S5 MLP run (default 300)")
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("sweep.json"))
    args = parser.parse_args()
    size = ({"p": 23, "d_model": 32, "d_mlp": 128, "steps": 200, "cells": 4} if args.quick else
            {"p": 31, "d_model": 64, "d_mlp": 256, "steps": 1000, "cells": 8})
    for key, value in size.items():
        setattr(args, key, value)
    load_before = os.getloadavg()
    results: dict = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}
    if args.only != "s5-mlp":
        results["size"] = size
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "s5-mlp":
            results.update(serial_against_ray(spec_for(args), Path(tmp), "paper"))
        if args.only != "paper" and not args.quick:
            results["s5_mlp"] = {"spec": s5_mlp_spec(8, args.s5_steps),
                                 **serial_against_ray(s5_mlp_spec(8, args.s5_steps), Path(tmp), "s5_mlp")}
    if args.only != "s5-mlp":
        results["batched_probe"] = batched_probe(args.p, args.d_model, args.d_mlp, args.cells)
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(f"{os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, {results['load_average']['after'][0]:.1f} "
          "after")
    if "serial" in results:
        print_row(f"{size['cells']} cells, p={size['p']}, d_model {size['d_model']}, d_mlp {size['d_mlp']}, "
                  f"{size['steps']} steps", results)
    if "s5_mlp" in results:
        print_row(f"8 seeds of the S5 MLP (d_embed 128, d_mlp 128), {args.s5_steps} steps", results["s5_mlp"])
    if "batched_probe" in results:
        probe = results["batched_probe"]
        print(f"batched probe: {probe['cells']} cells' forward+backward in one vmap call: "
              f"{probe['speedup']:.2f}x one by one; bit-identical to each alone: {probe['bit_identical']} "
              f"(max gradient difference {probe['max_grad_difference']:.1e}); batching kept: {probe['kept']}")
    args.json.write_text(json.dumps(results, indent=2))
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
