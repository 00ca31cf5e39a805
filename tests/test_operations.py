"""Operations beyond addition: the group coordinates, the task, and the analysis in the operation's basis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import PAPER_FILES
from synthetic import planted_op_model
from typer.testing import CliRunner

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.cli import app
from modadd_interp.config import ModelConfig, paper_init
from modadd_interp.fourier import gini
from modadd_interp.operations import OPERATIONS, is_prime, primitive_root

TRAINED = Path(__file__).parent / "data" / "trained"
OPS = ("add", "sub", "mul", "div")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("p", [2, 3, 5, 7, 12, 13, 59, 113])
def test_coordinates_turn_every_operation_into_addition(op, p):
    if OPERATIONS[op].multiplicative and not is_prime(p):
        with pytest.raises(mi.TaskMismatchError, match="needs a prime p"):
            OPERATIONS[op].coordinates(p)
        return
    coords = OPERATIONS[op].coordinates(p)
    n = coords.n
    x = torch.arange(n).repeat_interleave(n)
    y = torch.arange(n).repeat(n)
    answers = OPERATIONS[op].answer(coords.a_tokens[x], coords.b_tokens[y], p)
    assert torch.equal(answers, coords.c_tokens[(x + y) % n])
    # every coordinate is a distinct residue, and only 0 is left out of the multiplicative group
    assert len(set(coords.a_tokens.tolist())) == n == len(set(coords.b_tokens.tolist()))
    assert coords.outside.tolist() == ([0] if OPERATIONS[op].multiplicative else [])


@pytest.mark.parametrize("p", [3, 5, 7, 11, 13, 59, 97, 113, 1009])
def test_the_primitive_root_generates_the_group(p):
    g = primitive_root(p)
    assert len({pow(g, e, p) for e in range(p - 1)}) == p - 1
    assert all(len({pow(h, e, p) for e in range(p - 1)}) < p - 1 for h in range(2, g))  # the smallest one


def test_division_is_undefined_at_zero_and_in_no_split():
    task = mi.ModularTask(p=7, op="div", frac_train=0.5, seed=1)
    zero_b = task.pairs[:, 1] == 0
    assert (task.labels[zero_b] == -1).all() and not task.valid_mask[zero_b].any()
    assert not (task.train_mask | task.test_mask)[zero_b].any()
    assert int(task.train_mask.sum()) == int(0.5 * 42) and int(task.test_mask.sum()) == 42 - 21
    assert int(task.labels[3 * 7 + 5]) == (3 * pow(5, -1, 7)) % 7
    with pytest.raises(mi.TaskMismatchError, match="needs a prime p"):
        mi.ModularTask(p=9, op="mul")


def test_addition_keeps_the_paper_split():
    """The wd checkpoint's recorded seed reproduces its own training loss (the split did not move)."""
    model, task = mi.load(PAPER_FILES["wd"])
    assert mi.grid.evaluate(model, task)["train_loss"] == pytest.approx(9.2025e-09, rel=1e-3)


@pytest.mark.adapter
@pytest.mark.parametrize("op", OPS)
def test_a_hand_built_circuit_is_recovered_exactly_for_every_operation(op, backend):
    cfg, w = planted_op_model(23, op, [2, 5, 9])
    model = tl_adapter.build_model(cfg, w, backend=backend)
    with pytest.warns(UserWarning, match=rf"op inferred: '{op}'"):
        _, task = mi.load(model)
    assert task.op == op and task.op_source == "inferred"
    report = mi.verify_circuit(model, task)
    assert report.key_freqs == (2, 5, 9) and report.key_frequencies.confidence == "high"
    assert report.passed, report.verdict.line
    assert report.losses.full.accuracy == 1.0
    assert report.logits.readout == task.coords.readout
    # its neurons are ReLU(cos(w x + phi) + cos(w y + phi)) = ReLU(2 cos(w (x-y)/2) cos(w (x+y)/2 + phi)): a pizza
    assert report.algorithm == "pizza" and set(report.circles.labels.values()) == {"pizza"}


def test_the_op_given_overrides_the_one_read_from_the_model():
    cfg, w = planted_op_model(13, "sub", [3])
    model = tl_adapter.build_model(cfg, w)
    _, task = mi.load(model, op="add")
    assert (task.op, task.op_source) == ("add", "given")


def test_the_split_is_recognised_from_the_recorded_training_loss():
    with pytest.warns(UserWarning, match=r"split inferred: paper seed 1 .* next best"):
        _, task = mi.load(PAPER_FILES["low_precision"])
    assert (task.split, task.seed, task.split_source) == ("paper", 1, "inferred")


# --------------------------------------------------------- trained models
OP_FILES = {op: TRAINED / f"op_{op}_bridge.pt" for op in ("sub", "mul", "div")}


@pytest.mark.parametrize("op", sorted(OP_FILES))
def test_trained_models_are_read_in_their_operations_basis(op):
    result = CliRunner().invoke(app, ["analyze", str(OP_FILES[op]), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert (out["op"], out["op_source"]) == (op, "inferred")
    assert out["accuracy"] >= 0.999 and out["circuit_confirmed"] is True
    assert out["key_frequency_detection"]["confidence"] == "high" and 1 <= len(out["key_frequencies"]) <= 8
    assert out["group"]["order"] == (58 if op in ("mul", "div") else 59)
    if op in ("mul", "div"):
        assert out["outside_group"]["accuracy"] >= 0.99  # the zero row and column, reported on their own


def test_a_random_init_of_the_same_shape_fails_the_claims():
    model, _ = mi.load(OP_FILES["mul"], op="mul")
    cfg = tl_adapter.model_config(model)
    random = tl_adapter.build_model(cfg, paper_init(cfg, seed=3))
    result = mi.analyze(random, mi.ModularTask(p=59, op="mul", split="unknown"))
    assert result["circuit_confirmed"] is False and result["key_frequencies"] == []


def test_the_multiplicative_model_is_sparse_in_the_discrete_log_basis_only():
    """The same model read with the additive basis (op='add', wrong) has no sparse frequency structure."""
    model, task = mi.load(OP_FILES["mul"])
    right = mi.key_frequencies(model, task)
    wrong = mi.key_frequencies(model, mi.ModularTask(p=59, op="add", split="unknown"))
    assert right.confidence == "high" and wrong.confidence == "none"
    # measured: logit shares' Gini 0.87 in the discrete-log basis, 0.09 in the additive one; embedding 0.87 / 0.06
    assert gini(right.evidence["logit_share"]) > 0.8 > 0.2 > gini(wrong.evidence["logit_share"])
    assert gini(right.evidence["embed_share"]) > 0.8 > 0.2 > gini(wrong.evidence["embed_share"])


def test_bare_config_records_no_operation_but_ours_does(tmp_path):
    cfg, w = planted_op_model(13, "div", [4])
    run_task = mi.ModularTask(p=13, op="div", frac_train=0.5)
    from modadd_interp.storage import save_tensors

    save_tensors(tmp_path / "m.safetensors", w, {"config": cfg.to_dict(), "task": run_task.to_dict()})
    _, task = mi.load(tmp_path / "m.safetensors")
    assert (task.op, task.op_source, task.split_source) == ("div", "recorded", "recorded")
    assert ModelConfig(**cfg.to_dict()) == cfg
