"""Benchmark: the SLT lens per component and the loss kernel (``slt.llc(components=...)``, ``slt.loss_kernel``).

    python benchmarks/slt_lens.py                         # the shipped final model; writes benchmarks/slt_results.json
    python benchmarks/slt_lens.py --steps 200,4800,9000   # also those checkpoints of the shipped run (every row kept)
    python benchmarks/slt_lens.py --skip-final --steps all --kernel-only   # the kernel over the whole run

Timed in this process at torch's current thread count (``OMP_NUM_THREADS`` / ``--threads``), each figure a ratio
against baselines measured in the same run: ``forward`` is one ``model.run_with_cache(task.inputs)`` over the
grid (median of 5 after a warm-up) and ``llc`` one calibrated whole-model :func:`modadd_interp.slt.llc`.
``components`` is ``slt.llc(model, task, components=--components)`` (every row: value, steps, health, seconds),
``kernel`` one :func:`modadd_interp.slt.loss_kernel` at its defaults (both readings). With ``--steps``, the same
per checkpoint of ``mi.shipped_run()``; the JSON is rewritten after every checkpoint, so a long run that is
stopped keeps what it measured. The load average before and after is recorded: the machine is shared, and a busy
machine slows a run several-fold. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

import modadd_interp as mi
from modadd_interp import slt, tl_adapter

ROW_COLUMNS = ("component", "n_params", "llc_mean", "llc_std", "healthy", "reasons", "lr", "lr2", "llc_at_lr",
               "llc_at_lr2", "extrapolated", "tries", "seconds")


def _components(model, task, which: str, settings: dict | None = None) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unhealthy rows are in the table, with their reasons
        frame = slt.llc(model, task, components=which.split(",") if "," in which else which, **(settings or {}))
    return {"seconds": time.perf_counter() - start, "settings": frame.attrs["settings"],
            "rows": frame[list(ROW_COLUMNS)].to_dict(orient="records"), "healthy": int(frame["healthy"].sum())}


def _kernel(model, task, key_freqs, draws: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = slt.loss_kernel(model, task, key_freqs, num_draws=draws)
    return kernel.to_dict()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "slt_results.json")
    parser.add_argument("--components", default="all", help="a component set or a comma-separated list")
    parser.add_argument("--steps", default="", help="checkpoints of the shipped run: comma-separated, or 'all'")
    parser.add_argument("--skip-final", action="store_true", help="skip the final model's figures")
    parser.add_argument("--kernel-only", action="store_true", help="per checkpoint, the kernel alone")
    parser.add_argument("--no-kernel", action="store_true", help="no loss kernel (final model and checkpoints)")
    parser.add_argument("--kernel-draws", type=int, default=slt.kernel.DEFAULT_KERNEL_DRAWS, help="draws per chain")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--llc-settings", type=json.loads, default=None,
                        help='slt.llc settings for the checkpoints, as JSON (e.g. \'{"lr": 5e-5}\'); default: its own')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0],
              "machine": platform.machine(), "cpus": os.cpu_count(), "commit": _commit(),
              "date": time.strftime("%Y-%m-%d"), "load_average": {"before": os.getloadavg()}}

    def save() -> None:
        result["load_average"]["after"] = os.getloadavg()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")

    model, task = mi.load()
    key_freqs = mi.key_frequencies(model, task).freqs
    result["key_freqs"] = list(key_freqs)
    if not args.skip_final:
        with torch.no_grad():
            model.run_with_cache(task.inputs)
            times = []
            for _ in range(5):
                start = time.perf_counter()
                model.run_with_cache(task.inputs)
                times.append(time.perf_counter() - start)
        forward = statistics.median(times)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = slt.llc(model, task)
        llc_seconds = time.perf_counter() - start
        result.update(forward_seconds=forward, llc_seconds=llc_seconds, llc=whole.to_dict())
        print(f"one grid forward pass: {forward * 1e3:.1f} ms; one calibrated LLC: {llc_seconds:.1f} s "
              f"(LLC {whole.mean:.3g} ± {whole.std:.2g}, healthy {whole.healthy})", flush=True)
        save()
        result["components"] = _components(model, task, args.components)
        c = result["components"]
        print(f"component LLCs ({args.components}): {c['seconds']:.1f} s = {c['seconds'] / llc_seconds:.1f}x the "
              f"whole model's, {c['seconds'] / forward:.0f}x the forward pass; {c['healthy']} of {len(c['rows'])} "
              "healthy", flush=True)
        for row in c["rows"]:
            print(f"  {row['component']:>10}: {row['llc_mean']:8.3g} ± {row['llc_std']:6.2g}  lr {row['lr']:.3g} / "
                  f"{row['lr2']:.3g}  tries {row['tries']}  {row['seconds']:5.1f} s  "
                  f"{'healthy' if row['healthy'] else 'UNHEALTHY: ' + row['reasons']}", flush=True)
        save()
    if not args.skip_final and not args.no_kernel:
        result["kernel"] = _kernel(model, task, key_freqs, args.kernel_draws)
        k = result["kernel"]
        print(f"loss kernel: {k['seconds']:.1f} s = {k['seconds'] / result['llc_seconds']:.1f}x the whole LLC; "
              + "; ".join(f"{name}: key share {r['fourier_share']:.4f} against random {r['random_share']:.5f} "
                          f"({r['ratio']:.0f}x)" for name, r in k["readings"].items()), flush=True)
        save()
    if args.steps:
        run = mi.shipped_run()
        steps = run.steps if args.steps == "all" else [int(s) for s in args.steps.split(",")]
        result["series"], result["series_llc_settings"] = [], args.llc_settings
        for step in steps:
            checkpoint = tl_adapter.build_model(run.config, run.weights[run.steps.index(step)])
            row: dict = {"step": step}
            if not args.kernel_only:
                row["components"] = _components(checkpoint, run.task, args.components, args.llc_settings)
            if not args.no_kernel:
                row["kernel"] = _kernel(checkpoint, run.task, key_freqs, args.kernel_draws)
            result["series"].append(row)
            print(f"step {step}: " + ", ".join(
                f"{r['component']} {r['llc_mean']:.3g}{'' if r['healthy'] else ' (UNHEALTHY)'}"
                for r in row.get("components", {}).get("rows", [])) + "; kernel " + ", ".join(
                f"{name} {r['fourier_share']:.4f} vs {r['random_share']:.5f}"
                for name, r in row.get("kernel", {}).get("readings", {}).items()), flush=True)
            save()
    save()
    return result


if __name__ == "__main__":
    main()
