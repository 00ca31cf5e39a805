"""Train the fixtures of the Chughtai et al. and Clock-and-Pizza MLP-only formats with OUR trainer and write them in
THEIR layouts under tests/data/ (maintainers only; none of their files is shipped: their repository has no licence).

    python scripts/make_chughtai_fixtures.py WORK_DIR [NAME ...]

* ``chughtai/S4_MLP_seed1/``: their ``OneLayerMLP`` (``W_x``, ``W_y`` ``[24, 256]``, ``W`` ``[512, 128]``,
  ``W_U`` ``[128, 24]``) trained on S4 in sympy's element order (their order), on their split
  (``torch.manual_seed(1); randperm``, 70% train); ``cfg.json`` and ``model.pt``.
* ``chughtai/S4_T_seed2/``: their ``Transformer`` (a HookedTransformer state dict with their ``x_embed``/``y_embed``
  copies, ``mask``/``IGNORE`` buffers and zero biases; inputs ``(x, y, '=')``), at a smaller width than theirs
  (d_model 64, 4 heads, d_mlp 256) to keep the file small; S4 in their order, seed 2, 80% train.
* ``clock_and_pizza_mlp/model_fixtured.pt`` + ``config_fixtured.json``: Zhong et al.'s ``MyModelD`` (one shared
  embedding ``[31, 64]`` concatenated, ``l1`` ``Linear(128, 128)`` with bias, ReLU, ``unembed.weight`` ``[31, 128]``)
  on ``(a + b) mod 31``.

Each model is trained with ``mi.train`` into ``WORK_DIR/<name>`` and checked to answer its whole grid.
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict
from pathlib import Path

import torch

import modadd_interp as mi
from modadd_interp.checkpoints import read_checkpoint
from modadd_interp.config import ModelConfig
from modadd_interp.formats.chughtai import their_group
from modadd_interp.mlp import from_canonical
from modadd_interp.operations import operation_of_group

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
S4_OP = operation_of_group(their_group("SymmetricGroup", 4))  # S4 in sympy's order ("S4~<digest>")


def _their_cfg(model: str, frac: float, seed: int, steps: int, layers: dict) -> dict:
    return {"lr": 0.01, "weight_decay": 1, "betas": [0.9, 0.98], "layers": layers, "model": model,
            "group": "SymmetricGroup", "group_parameter": 4, "frac_train": frac, "seed": seed, "num_epochs": steps}


def _trained(name: str, work: Path, task: mi.ModularTask, config: ModelConfig, **recipe) -> dict[str, torch.Tensor]:
    run = mi.train(task, work / name, config=config, progress=False, **recipe)
    ckpt = read_checkpoint(run)
    model, _ = mi.load(run)
    logits = model(config.encode(task.pairs))
    accuracy = task.accuracy(logits)
    print(f"{name}: accuracy {accuracy:.4f} on the grid, test loss {task.loss(logits, 'test'):.3g}")
    if accuracy < 1.0:
        raise SystemExit(f"{name} did not learn its task; not writing it.")
    return ckpt.weights


def s4_mlp(work: Path) -> None:
    task = mi.ModularTask(p=24, op=S4_OP, frac_train=0.7, seed=1, split="randperm")
    config = ModelConfig.mlp(24, d_embed=256, d_mlp=128)
    own = from_canonical(config.mlp_config(), _trained("S4_MLP_seed1", work, task, config, steps=2500, lr=1e-2,
                                                       weight_decay=1.0, warmup_steps=0))
    out = DATA / "chughtai" / "S4_MLP_seed1"
    out.mkdir(parents=True, exist_ok=True)
    state = OrderedDict([("W_x", own["embed_x"]), ("W_y", own["embed_y"]), ("W", own["W_in"]), ("W_U", own["W_U"])])
    torch.save(state, out / "model.pt")
    layers = {"embed_dim": 256, "hidden_dim": 128}
    (out / "cfg.json").write_text(json.dumps(_their_cfg("OneLayerMLP", 0.7, 1, 2500, layers)))


def s4_transformer(work: Path) -> None:
    task = mi.ModularTask(p=24, op=S4_OP, frac_train=0.8, seed=2, split="randperm")
    config = ModelConfig.paper(24, d_model=64, n_heads=4, d_head=16, d_mlp=256)
    # make_test_models.py's recipe for S4 (groks in ~3,300 steps at this width; d_mlp 128 memorized instead)
    w = _trained("S4_T_seed2", work, task, config, steps=5000, lr=1e-2, weight_decay=1.0)
    state = OrderedDict([("x_embed", w["embed.W_E"]), ("y_embed", w["embed.W_E"].clone())])
    for key in ("embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V",
                "blocks.0.attn.W_O", "blocks.0.attn.b_Q", "blocks.0.attn.b_K", "blocks.0.attn.b_V",
                "blocks.0.attn.b_O"):
        state[key] = w[key]
    state["blocks.0.attn.mask"] = torch.tril(torch.ones(3, 3, dtype=torch.bool))
    state["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)
    for key in ("blocks.0.mlp.W_in", "blocks.0.mlp.b_in", "blocks.0.mlp.W_out", "blocks.0.mlp.b_out", "unembed.W_U",
                "unembed.b_U"):
        state[key] = w[key]
    out = DATA / "chughtai" / "S4_T_seed2"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(state, out / "model.pt")
    (out / "cfg.json").write_text(json.dumps(_their_cfg("Transformer", 0.8, 2, 5000,
                                                        {"embed_dim": 256, "hidden_dim": 128})))


def pizza_mlp_d(work: Path) -> None:
    task = mi.ModularTask(p=31, frac_train=0.8, seed=0, split="randperm")
    config = ModelConfig.mlp(31, d_embed=64, d_mlp=128, embed="concat", shared_embed=True, mlp_bias=True)
    own = from_canonical(config.mlp_config(), _trained("pizza_mlp_D", work, task, config, steps=3000, lr=1e-2,
                                                       weight_decay=1.0, warmup_steps=0))
    out = DATA / "clock_and_pizza_mlp"
    out.mkdir(parents=True, exist_ok=True)
    state = OrderedDict([("embed.weight", own["embed_x"]), ("unembed.weight", own["W_U"].T.contiguous()),
                         ("l1.weight", own["W_in"].T.contiguous()), ("l1.bias", own["b_in"])])
    torch.save(state, out / "model_fixtured.pt")
    (out / "config_fixtured.json").write_text(json.dumps(
        {"C": 31, "model_type": "D", "n_vocab": 31, "d_model": 128, "d_hidden": 128, "epoch": 3000, "lr": 0.01,
         "weight_decay": 1.0, "frac": 0.8, "runid": "fixtured", "func": None}))


FIXTURES = {"S4_MLP_seed1": s4_mlp, "S4_T_seed2": s4_transformer, "pizza_mlp_D": pizza_mlp_d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("names", nargs="*", default=list(FIXTURES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.names:
        FIXTURES[name](args.work)


if __name__ == "__main__":
    main()
