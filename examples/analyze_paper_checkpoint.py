"""Analyze one of the grokking paper's own checkpoints: the ablation table and the circuit's claims.

    python examples/analyze_paper_checkpoint.py [PATH]

PATH defaults to tests/data/paper/wd_10-1_mod_addition_loss_curve.pth, a p=113 model trained
by the paper's authors (its saved config gives the split: frac_train 0.3, seed 1). The other
files in tests/data/paper do not record their split; the paper's default (seed 0) is assumed,
with a warning. About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import modadd_interp as mi

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "data" / "paper" / "wd_10-1_mod_addition_loss_curve.pth"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT), help="a paper checkpoint (.pth)")
    args = parser.parse_args()

    try:
        model, task = mi.load(args.path)
    except mi.ModAddError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"checkpoint: {args.path}")
    print(f"task: (a + b) mod {task.p}, train fraction {task.frac_train}, split seed {task.seed}")

    report = mi.verify_circuit(model, task)
    print(f"key frequencies: {list(report.key_freqs)}")

    table = report.table.to_frame()[["intervention", "accuracy", "train_loss", "test_loss"]]
    print(f"\nablation table (float64 losses; a uniform guess has loss log p = {report.table.uniform_loss:.3f}):")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))

    losses = report.losses
    print(f"\nrestricted loss (test, key frequencies only): {losses.restricted.test_loss:.3g}")
    print("excluded loss (train, one key frequency removed): "
          + ", ".join(f"{k}: {m.train_loss:.3g}" for k, m in losses.excluded.items()))

    print("\nclaims:")
    print(report.to_frame()[["passed", "name", "after", "comparison", "threshold"]]
          .to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"\ncircuit confirmed: {report.passed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
