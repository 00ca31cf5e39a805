"""Train a small modular-addition model with mi.train, then watch it form its circuit.

    python examples/train_and_watch.py            # p=23, 2000 steps (about 1.5 minutes on 2 CPU cores)
    python examples/train_and_watch.py --quick    # p=23, 300 steps (well under a minute); it will not grok
    python examples/train_and_watch.py --out DIR  # keep the run directory (default: a temporary one)

After training, mi.progress_measures reads every checkpoint of the run (losses, restricted and
excluded loss, Gini of the embedding, neuron clusters) and finds the phases: memorization,
circuit formation, cleanup. The recipe here (frac_train 0.7, lr 3e-3, weight decay 1) is a
small-p variant of the paper's, chosen so that p=23 groks in about 2000 steps; the script
prints what actually happened.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

import modadd_interp as mi

P = 23
FRAC_TRAIN = 0.7
RECIPE = {"lr": 3e-3, "weight_decay": 1.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="train only 300 steps")
    parser.add_argument("--out", default=None, help="run directory to keep (resumed if it exists)")
    args = parser.parse_args()
    steps = 300 if args.quick else 2000
    # One thread: a model this small gains nothing from more, and on a 2-core machine busy with other
    # work, torch's default (one thread per core) made --quick take 207 s instead of 19 s.
    torch.set_num_threads(1)

    task = mi.ModularTask(p=P, frac_train=FRAC_TRAIN, seed=0)
    with tempfile.TemporaryDirectory(prefix="modadd_run_") as tmp:
        run_dir = args.out or tmp
        print(f"training (a + b) mod {P} for {steps} steps into {run_dir} ...")
        start = time.perf_counter()
        mi.train(task, run_dir, steps=steps, checkpoint_every=steps // 20, progress=False, **RECIPE)
        print(f"trained in {time.perf_counter() - start:.0f} s")

        frame = mi.progress_measures(run_dir, progress=False)

    print(f"\nkey frequencies: {frame.attrs['key_freqs']} ({frame.attrs['key_freqs_source']})")
    columns = ["step", "train_loss", "test_loss", "test_accuracy", "restricted_loss", "excluded_loss", "gini_we"]
    print(frame[columns].to_string(index=False, float_format=lambda x: f"{x:.3g}"))

    phases = frame.attrs["phases"]
    print("\nphases:")
    print(f"  memorization ends at step:      {phases['memorization_end']}")
    print(f"  circuit formation ends at step: {phases['circuit_formation_end']}")
    print(f"  cleanup ends at step:           {phases['cleanup_end']}")
    print(f"  rule: {phases['rule']}")
    final = frame.iloc[-1]
    if phases["grokked"]:
        print(f"\ngrokked: test accuracy {final['test_accuracy']:.1%}, test loss {final['test_loss']:.3g}")
    else:
        print(f"\nnot grokked after {steps} steps: test accuracy {final['test_accuracy']:.1%}, "
              f"test loss {final['test_loss']:.3g}" + (" (run without --quick to train longer)" if args.quick else ""))
    for name, value in frame.attrs["phase_checks"].items():
        print(f"  check {name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
