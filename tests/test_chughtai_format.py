"""Chughtai et al.'s format (``cfg.json`` + ``model.pt``): their element orders, their split, their forward passes, and
bad input. The fixtures are ours, written in their layout (scripts/make_chughtai_fixtures.py)."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from forward_bounds import check_within, chughtai_mlp, gamma_typical, hooked_transformer
from typer.testing import CliRunner

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.checkpoints import read_checkpoint
from modadd_interp.cli import app
from modadd_interp.formats.chughtai import group_order, their_group
from modadd_interp.groups import dihedral, sympy_order, sympy_relabelling
from modadd_interp.operations import get_operation

DATA = Path(__file__).parent / "data" / "chughtai"
MLP_DIR, T_DIR = DATA / "S4_MLP_seed1", DATA / "S4_T_seed2"


def _state(run: Path) -> dict:
    return torch.load(run / "model.pt", weights_only=True, map_location="cpu")


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # everything is recorded: no notice
        return mi.load(path, **kw)


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)


# ----------------------------------------------------------------------------- element orders
@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_the_recorded_symmetric_orders_are_sympys(n):
    pytest.importorskip("sympy")
    assert torch.equal(sympy_order("S", n), sympy_relabelling(n))


def test_the_recorded_a5_order_is_that_of_their_generators():
    sympy = pytest.importorskip("sympy.combinatorics")
    group = sympy.PermutationGroup(sympy.Permutation(0, 1, 2, 3, 4), sympy.Permutation(1, 2)(3, 4))
    theirs = [tuple(p.array_form) for p in group.generate()]
    ours = [tuple(int(v) for v in p) for p in mi.groups.alternating(5).family.permutations]
    assert [ours[i] for i in sympy_order("A", 5)] == theirs


@pytest.mark.parametrize(("group", "parameter"), [("SymmetricGroup", 4), ("AlternatingGroup", 5),
                                                  ("DihedralGroup", 5), ("CyclicGroup", 7)])
def test_their_groups_compose_as_their_utils_groups_does(group, parameter):
    """Their ``compose(i, j)``: sympy's ``P_i * P_j`` (i first), rotations then reflections, integers mod n."""
    g = their_group(group, parameter)
    assert g.order == group_order(group, parameter)
    if group in ("SymmetricGroup", "AlternatingGroup"):
        perms = g.family.permutations  # [order, degree], element k in their order
        i, j = 3, 7
        composed = perms[j][perms[i]]  # (P_i * P_j)[k] = P_j[P_i[k]]
        assert torch.equal(perms[g.table[i, j]], composed)
    elif group == "DihedralGroup":
        n = parameter
        for x in range(2 * n):
            for y in range(2 * n):
                xr, xs, yr, ys = x % n, x // n, y % n, y // n
                z = ((xr + yr) % n + n * ys) if xs == 0 else ((xr - yr) % n + n * ((1 + ys) % 2))
                assert int(g.table[x, y]) == z
        assert torch.equal(g.table, dihedral(n).table)
    else:
        r = torch.arange(parameter)
        assert torch.equal(g.table, (r[:, None] + r[None, :]) % parameter)


# ----------------------------------------------------------------------------- the MLP
def test_their_mlp_loads_with_its_group_and_split():
    model, task = _load(MLP_DIR)
    cfg = json.loads((MLP_DIR / "cfg.json").read_text())
    assert type(model).__name__ == "HookedMLP"
    assert get_operation(task.op).group.name == "S4" and task.op != "S4"  # S4, but in sympy's order
    assert (task.split, task.seed, task.frac_train) == ("randperm", cfg["seed"], cfg["frac_train"])
    assert (task.op_source, task.split_source) == ("recorded", "recorded")
    # their get_all_data: torch.manual_seed(seed); randperm(n*n); the first int(frac * n*n) train
    torch.manual_seed(cfg["seed"])
    theirs = torch.randperm(24 * 24)[: int(cfg["frac_train"] * 24 * 24)]
    assert torch.equal(task.train_indices, theirs)
    # the labels are their table: in their order, (P_x * P_y)
    perms = their_group("SymmetricGroup", 4).family.permutations
    x, y = _grid(24)
    composed = perms[y[:, None], perms[x]]  # P_y[P_x[k]]
    labels_perms = perms[task.labels]
    assert torch.equal(labels_perms, composed)


def test_their_mlp_forward_pass_equals_theirs():
    state = _state(MLP_DIR)
    model, task = _load(MLP_DIR / "model.pt")  # the file, its cfg.json beside it
    x, y = _grid(24)
    reference, bound = chughtai_mlp(state, x, y)
    with torch.no_grad():
        logits = model(tl_adapter.model_config(model).encode(task.pairs))[:, -1]
    check_within(logits, reference, bound)  # the worst case
    check_within(logits, *chughtai_mlp(state, x, y, g=gamma_typical))  # and the typical rounding error
    assert task.accuracy(logits) == 1.0  # it learned their table, in their order


def test_their_mlp_without_its_cfg_reads_the_group_from_the_model(tmp_path):
    shutil.copy(MLP_DIR / "model.pt", tmp_path / "model.pt")
    with pytest.warns(UserWarning) as record:
        _, task = mi.load(tmp_path / "model.pt")
    messages = " ".join(str(w.message) for w in record)
    assert "has no cfg.json beside it" in messages
    assert get_operation(task.op).group.order == 24 and task.op_source == "inferred"


def test_a_seed_of_zero_is_their_unshuffled_split_and_unknown_here(tmp_path):
    shutil.copy(MLP_DIR / "model.pt", tmp_path / "model.pt")
    cfg = json.loads((MLP_DIR / "cfg.json").read_text())
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "seed": 0}))
    with pytest.warns(UserWarning, match=r"seed 0 means their data was not shuffled \(the first 403 pairs"):
        _, task = mi.load(tmp_path)
    assert task.split == "unknown"


def test_their_epoch_checkpoints_read_the_cfg_one_directory_up(tmp_path):
    shutil.copy(MLP_DIR / "cfg.json", tmp_path / "cfg.json")
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(MLP_DIR / "model.pt", tmp_path / "checkpoints" / "epoch_1200.pt")
    ckpt = read_checkpoint(tmp_path / "checkpoints" / "epoch_1200.pt")
    assert (ckpt.format, ckpt.step, ckpt.task.split) == ("chughtai", 1200, "randperm")


# ----------------------------------------------------------------------------- the transformer
def test_their_transformer_forward_pass_equals_theirs():
    state = _state(T_DIR)
    model, task = _load(T_DIR)
    cfg = tl_adapter.model_config(model)
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx, cfg.attention_dir, cfg.act_fn) == (25, 24, 3, "causal", "relu")
    x, y = _grid(24)
    tokens = torch.stack([x, y, torch.full_like(x, 24)], dim=1)  # their forward: (x, y, n)
    assert torch.equal(cfg.encode(task.pairs), tokens)
    reference, bound = hooked_transformer(state, tokens)
    with torch.no_grad():
        logits = model(tokens)[:, -1]
    check_within(logits, reference, bound)
    check_within(logits, *hooked_transformer(state, tokens, g=gamma_typical))
    assert task.accuracy(logits) == 1.0
    assert (task.split, task.seed, task.frac_train) == ("randperm", 2, 0.8)


def test_their_transformer_without_its_cfg_is_claimed_by_its_embedding_copies(tmp_path):
    shutil.copy(T_DIR / "model.pt", tmp_path / "weights.pt")
    with pytest.warns(UserWarning, match="weights.pt has no cfg.json beside it"):
        ckpt = read_checkpoint(tmp_path / "weights.pt")
    assert ckpt.format == "chughtai" and ckpt.task is None and "x_embed" not in ckpt.weights


def test_the_cli_analyzes_their_run_directory():
    result = CliRunner().invoke(app, ["analyze", str(MLP_DIR), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["task"]["op"].startswith("S4~") and out["task"]["split"] == "randperm", out["task"]
    # read in their order, the fixture computes with S4's standard irrep (and its held-out pairs are answered)
    assert [irrep["name"] for irrep in out["key_irreps"]] == ["(3,1)"] and out["test_accuracy"] == 1.0


# ----------------------------------------------------------------------------- bad input
def _copy_run(tmp_path: Path, run: Path = MLP_DIR, **cfg_changes) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(run / "model.pt", out / "model.pt")
    cfg = {**json.loads((run / "cfg.json").read_text()), **cfg_changes}
    (out / "cfg.json").write_text(json.dumps(cfg))
    return out


def _no_new_files(path: Path, before: set) -> None:
    assert set(path.rglob("*")) == before, "a failed load wrote files"


def test_an_unknown_group_is_named_in_one_line(tmp_path):
    run = _copy_run(tmp_path, group="QuaternionGroup")
    before = set(tmp_path.rglob("*"))
    with pytest.raises(mi.CheckpointError, match=r"cfg.json: group 'QuaternionGroup' is unknown; Chughtai et al.'s "
                                                 r"utils/groups.py defines SymmetricGroup, AlternatingGroup") as err:
        mi.load(run)
    assert "\n" not in str(err.value) and str(run / "cfg.json") in str(err.value)
    _no_new_files(tmp_path, before)


@pytest.mark.parametrize(("run", "parameter", "match"), [
    (MLP_DIR, 5, r"says SymmetricGroup 5 \(order 120\), but .*model.pt's W_x has 24 rows"),
    (T_DIR, 3, r"says SymmetricGroup 3 \(order 6\), but .*model.pt's embed.W_E has 25 rows, not 6 \+ 1"),
])
def test_a_group_parameter_that_does_not_fit_the_weights_is_refused(tmp_path, run, parameter, match):
    path = _copy_run(tmp_path, run, group_parameter=parameter)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(mi.ArchitectureError, match=match) as err:
        mi.load(path)
    assert "\n" not in str(err.value)
    _no_new_files(tmp_path, before)


def test_a_state_dict_with_missing_tensors_is_named(tmp_path):
    path = _copy_run(tmp_path)
    state = _state(MLP_DIR)
    del state["W"]
    torch.save(state, path / "model.pt")
    before = set(tmp_path.rglob("*"))
    with pytest.raises(mi.InvalidWeightsError, match=r"OneLayerMLP state dict, but keys are missing: \['W'\]"):
        mi.load(path)
    _no_new_files(tmp_path, before)


@pytest.mark.parametrize(("changes", "match"), [
    ({"model": "BilinearNet"}, r"model 'BilinearNet' is not supported"),
    ({"layers": {"embed_dim": 128}}, r"says layers.embed_dim=128, but .*model.pt's weights have 256"),
    ({"group": "AlternatingGroup", "group_parameter": 4}, r"their code implements A_n for n = 5 only"),
    ({"group_parameter": "4"}, r"group_parameter must be a positive integer, got '4'"),
])
def test_other_cfg_errors_name_the_field(tmp_path, changes, match):
    with pytest.raises((mi.CheckpointError, mi.ArchitectureError), match=match):
        mi.load(_copy_run(tmp_path, **changes))


def test_a_directory_with_cfg_but_no_model_is_refused(tmp_path):
    (tmp_path / "cfg.json").write_text((MLP_DIR / "cfg.json").read_text())
    with pytest.raises(mi.CheckpointError, match=r"has a cfg.json but no model.pt: nothing to load"):
        mi.load(tmp_path)


def test_group_order_is_their_formula():
    assert [group_order("SymmetricGroup", 5), group_order("CyclicGroup", 113)] == [math.factorial(5), 113]


def test_load_run_reads_their_epoch_checkpoints_then_the_final_model(tmp_path):
    run = _copy_run(tmp_path)
    (run / "checkpoints").mkdir()
    state = _state(MLP_DIR)
    for epoch, scale in ((0, 0.5), (1000, 0.9)):  # their save_checkpoint: checkpoints/epoch_{epoch}.pt
        torch.save({k: v * scale for k, v in state.items()}, run / "checkpoints" / f"epoch_{epoch}.pt")
    series = mi.load_run(run)
    assert [int(s) for s in series.steps] == [0, 1000, 2500]  # num_epochs is model.pt's step
    assert series.task.split == "randperm"


def test_a_cfg_json_that_is_not_json_is_named(tmp_path):
    run = _copy_run(tmp_path)
    (run / "cfg.json").write_text("{not json")
    with pytest.raises(mi.CheckpointError, match=r"cannot read .*cfg.json: Expecting property name"):
        mi.load(run)
    (run / "cfg.json").write_text("[1, 2]")
    with pytest.raises(mi.CheckpointError, match=r"cfg.json must be a JSON object \(Chughtai et al.'s cfg.json\)"):
        mi.load(run)
