"""Build the shipped model and series from a finished training run (maintainers only).

    python scripts/make_shipped.py runs/p113

Writes modadd_interp/data/grokked_p113.safetensors (final weights, float32) and
grokked_p113_series.safetensors (a thinned checkpoint series in float16 plus the full loss
history), after checking that the final model has grokked and that half precision does not
change the progress measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.grid import evaluate
from modadd_interp.loading import SHIPPED_MODEL, SHIPPED_SERIES, data_path
from modadd_interp.runs import Run, load_run, write_series
from modadd_interp.storage import save_tensors
from modadd_interp.train import read_run_info

EARLY = (100, 200, 300, 500, 700, 1000)
EVERY = 500
DENSE = (4400, 7200, 400)  # every 400 steps while the test loss falls, between the 500s


def thin(steps: tuple[int, ...]) -> list[int]:
    """The kept steps: a few early ones (memorization), every 500, every 400 around grokking, the last."""
    lo, hi, every = DENSE
    keep = {s for s in steps if s in EARLY or s % EVERY == 0 or (lo <= s <= hi and s % every == 0)}
    keep.add(steps[-1])
    return sorted(keep)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    run = load_run(args.run_dir)
    info = read_run_info(args.run_dir)
    final = run.checkpoint(-1)
    model = tl_adapter.build_model(final.config, final.weights)
    result = evaluate(model, run.task)
    print(json.dumps(result, indent=1))
    if result["test_loss"] >= 1e-3 or result["accuracy"] < 1.0:
        print("the final model has not grokked (needs test loss < 1e-3 and 100% accuracy)", file=sys.stderr)
        return 1
    meta = {"config": final.config.to_dict(), "task": run.task.to_dict(), "step": final.step,
            "recipe": info["recipe"]}
    save_tensors(data_path(SHIPPED_MODEL), final.weights, meta)

    kept = thin(run.steps)
    index = [run.steps.index(s) for s in kept]
    series = Run(run.config, tuple(kept), tuple(run.weights[i] for i in index), run.task, run.history)
    write_series(series, data_path(SHIPPED_SERIES))
    shipped = mi.shipped_run()
    t0 = time.time()
    full = mi.progress_measures(series, progress=False)
    t_full = time.time() - t0
    half = mi.progress_measures(shipped, progress=False)
    diff = (full.drop(columns="step") - half.drop(columns="step")).abs() / (full.drop(columns="step").abs() + 1e-12)
    print(f"{len(kept)} checkpoints: {kept}")
    print(f"progress measures in {t_full:.1f}s; key freqs float32 {full.attrs['key_freqs']}, "
          f"float16 {half.attrs['key_freqs']}")
    print("largest relative change per column from float16:", diff.max().round(4).to_dict())
    print("phases float32:", full.attrs["phases"])
    print("phases float16:", half.attrs["phases"])
    for name in (SHIPPED_MODEL, SHIPPED_SERIES):
        print(name, f"{data_path(name).stat().st_size / 1e6:.2f} MB")
    same = full.attrs["phases"] == half.attrs["phases"] and full.attrs["key_freqs"] == half.attrs["key_freqs"]
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
