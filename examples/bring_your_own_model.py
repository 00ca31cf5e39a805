"""Bring your own TransformerLens model: build it the usual way, then analyze it with mi.load(model).

    python examples/bring_your_own_model.py           # your model holds a paper checkpoint's weights (p=113)
    python examples/bring_your_own_model.py --quick   # your model is trained briefly by your own loop (p=23)

The model is built as a user would on the installed TransformerLens:

* TransformerLens <= 3: ``HookedTransformer(HookedTransformerConfig(...))``;
* TransformerLens 4:    ``TransformerBridge.boot_native(TransformerBridgeConfig(...))``, after importing
  ``transformer_lens.model_bridge.sources.native`` (which registers ``boot_native``).

``mi.load(model, task=...)`` returns your object unchanged (never copied or modified), paired with the
task. A live model does not record its train/test split, so pass the task it was trained on.
The default run takes about a minute on 2 CPU cores; ``--quick`` well under one.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path

import torch

import modadd_interp as mi

TL_VERSION = importlib.metadata.version("transformer-lens")  # `hasattr(transformer_lens, ...)` raises on TL 4
TL_MAJOR = int(TL_VERSION.split(".")[0])
PAPER_CHECKPOINT = (Path(__file__).resolve().parent.parent / "tests" / "data" / "paper"
                    / "wd_10-1_mod_addition_loss_curve.pth")


def build_model(p: int, d_vocab_out: int):
    """A one-layer, LayerNorm-free attention + ReLU-MLP transformer, the paper's sizes, built the TL way."""
    sizes = dict(n_layers=1, n_heads=4, d_model=128, d_head=32, d_mlp=512, act_fn="relu",
                 normalization_type=None, d_vocab=p + 1, d_vocab_out=d_vocab_out, n_ctx=3, seed=0)
    if TL_MAJOR <= 3:
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        return HookedTransformer(HookedTransformerConfig(**sizes))
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge.boot_native(TransformerBridgeConfig(**sizes))


def weights_from_paper_checkpoint():
    """Your model, holding the weights of a grokked paper checkpoint (p=113, with an '=' output)."""
    loaded, task = mi.load(PAPER_CHECKPOINT)  # the paper's layout, converted to a model of your TL's kind
    model = build_model(p=113, d_vocab_out=114)
    model.load_state_dict(loaded.state_dict())
    return model, task


def train_briefly(steps: int = 300):
    """Your model, trained by your own full-batch loop on (a + b) mod 23 (too briefly to grok)."""
    task = mi.ModularTask(p=23, frac_train=0.7, seed=0)
    model = build_model(p=23, d_vocab_out=23)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98))
    x, y = task.inputs[task.train_mask], task.labels[task.train_mask]
    for _ in range(steps):
        logprobs = model(x)[:, -1].double().log_softmax(-1)  # the answer is read at the final '=' position
        loss = -logprobs.gather(1, y[:, None]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"trained {steps} steps: final training loss {loss.item():.3g}")
    return model, task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="train a small p=23 model briefly instead")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small CPU workloads: one thread avoids oversubscribing a busy machine

    mine, task = train_briefly() if args.quick else weights_from_paper_checkpoint()
    print(f"transformer-lens {TL_VERSION}: your model is a {type(mine).__name__}")

    model, task = mi.load(mine, task=task)
    assert model is mine  # returned as is
    print(f"task: (a + b) mod {task.p}, train fraction {task.frac_train}, split seed {task.seed}")

    kf = mi.key_frequencies(model, task)
    print(f"key frequencies: {list(kf.freqs)} (confidence {kf.confidence}): {kf.reason}")
    report = mi.verify_circuit(model, task)
    full = report.losses.full
    print(f"accuracy {full.accuracy:.1%}, train loss {full.train_loss:.3g}, test loss {full.test_loss:.3g}")
    for claim in report.claims:
        print(f"  [{'PASS' if claim.passed else 'FAIL'}] {claim.name}: {claim.after:.3g} "
              f"(needs {claim.comparison} {claim.threshold:.3g})")
    print(f"circuit confirmed: {report.passed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
