"""Clock or pizza? Read the algorithm of the two Clock-and-Pizza models, or of a pair you train.

    python examples/clock_vs_pizza.py                 # Zhong et al.'s Model A and Model B (about a minute)
    python examples/clock_vs_pizza.py PATH [PATH ...] # any checkpoints (model_<id>.pt with its config beside it)
    python examples/clock_vs_pizza.py --train DIR     # train an attention-rate 0 and 1 pair first (minutes)

Model A (attention rate 0, constant attention) and Model B (rate 1) are the paper's two stories, published by
its authors in ``fjzzq2002/pizza`` and kept in tests/data/clock_and_pizza. ``--train`` trains the same pair with
our trainer at p = 31 in their layout (inputs (a, b), no mask, Zhong et al.'s recipe: 80% of the grid, weight
decay 2): about 5 minutes each on 2 CPU cores; the runs are resumed if DIR already holds them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import modadd_interp as mi
from modadd_interp.tl_adapter import model_config

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "clock_and_pizza"
DEFAULT = [FIXTURES / "model_p99zdpze5l.pt", FIXTURES / "model_l8k1hzciux.pt"]


def train_pair(out: Path) -> list[Path]:
    """An attention-rate 0 and 1 pair at p = 31 (their layout and recipe, a smaller width)."""
    runs = []
    for rate in (0.0, 1.0):
        config = mi.ModelConfig.paper(31, has_eq=False, attention_dir="bidirectional", attn_rate=rate,
                                      d_model=64, d_head=16, d_mlp=256)
        task = mi.ModularTask(p=31, frac_train=0.8, seed=0)
        runs.append(mi.train(task, out / f"rate_{rate:g}", config=config, steps=3000, weight_decay=2.0))
    return runs


def describe(path: Path) -> None:
    model, task = mi.load(path)
    cfg = model_config(model)
    report = mi.verify_circuit(model, task)
    diag = report.diagnostics
    print(f"\n{path.name}: attention rate {cfg.attn_rate:g}, {cfg.n_layers} layer(s), {task.describe()}")
    print(f"  verdict: {report.verdict.line}")
    print(f"  Zhong et al.: gradient symmetricity {diag.gradient_symmetricity:.3f}, distance irrelevance "
          f"{diag.distance_irrelevance:.3f}, circularity {diag.circularity:.3f}")
    if report.circles is not None:
        circles = ", ".join(f"k={k}: {label} ({report.circles.signatures[k]['pizzaness']:.2f})"
                            for k, label in report.circles.labels.items())
        print(f"  isolated circles (pizzaness): {circles}")
    for name, test in report.hypotheses.items():
        shares = ", ".join(f"{k} {v:.4f}" for k, v in test.loss_recovered.items())
        print(f"  {name}: loss recovered {shares}; FVE of the logits {test.fve:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="checkpoints (default: Model A and Model B)")
    parser.add_argument("--train", type=Path, metavar="DIR", help="train an attention-rate 0/1 pair into DIR first")
    args = parser.parse_args()
    paths = args.paths or (train_pair(args.train) if args.train else DEFAULT)
    try:
        for path in paths:
            describe(path)
    except mi.ModAddError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
