"""Any finite group: a transformer trained here on S4, read through S4's irreps; the group read from the answers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.causal.irrep_circuit import GroupCircuitReport, verify_group_circuit
from modadd_interp.config import paper_init
from modadd_interp.groups import symmetric
from modadd_interp.probes import grid_cache

S4_FILE = Path(__file__).parent / "data" / "trained" / "group_S4.safetensors"


@pytest.fixture(scope="module")
def s4():
    model, task = mi.load(S4_FILE)
    cache = grid_cache(model, task)
    return model, task, cache, mi.verify_circuit(model, task, cache=cache)


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(logits.double(), labels))


def test_the_s4_transformer_is_read_as_a_representation_clock(s4):
    model, task, cache, report = s4
    assert isinstance(report, GroupCircuitReport)
    assert task.group.name == "S4" and task.op_source == "recorded" and not task.group.abelian
    assert report.passed, report.verdict.line
    key = report.key_irreps
    assert key.confidence == "high" and 1 <= len(key.names) <= 3
    assert report.verdict.line.startswith(f"clock at ρ = [{', '.join(key.names)}]:")
    # Chughtai et al.'s criterion holds for every key irrep: logit trace similarity above 0.005
    for record in key.records():
        assert record["trace_similarity"] > 0.005 and record["name"] != "(4)"
    measured = report.measurements
    full = measured["full model"]
    assert measured["restricted logits"].test_loss <= max(2 * full.test_loss, 1e-3)
    assert measured["logits without the key irreps"].accuracy < 0.5
    assert min(report.verdict.loss_recovered.values()) >= 0.95


def test_the_key_irreps_are_the_necessary_ones_by_an_independent_projection(s4):
    """Written again from the definitions: the logits over the grid by a plain forward pass, the isotypic projectors
    from S4's orthogonal representation matrices (not the characters the package uses), each irrep's components
    along x ∘ y removed in turn."""
    model, task, _, report = s4
    group = symmetric(4)
    n = group.order
    with torch.no_grad():
        logits = model(task.inputs)[:, -1, :n].double()  # [n*n, n] in grid order x * n + y
    labels = task.labels
    s = labels  # the class of (x, y) is x ∘ y
    means = torch.zeros(n, n, dtype=torch.float64).index_add_(0, s, logits) / n  # R[s, z]
    train = task.train_mask
    base = _loss(logits[train], labels[train])
    rises = {}
    for irrep in group.irreps[1:]:
        rep = group.representation(irrep)  # [n, r, r] orthogonal matrices
        coefficients = rep.reshape(n, -1)  # the matrix coefficients span the isotypic component
        q, _ = torch.linalg.qr(coefficients)
        rank = int((torch.linalg.svdvals(coefficients) > 1e-9).sum())
        projector = q[:, :rank] @ q[:, :rank].T
        shift = projector @ means  # the component of R along s
        rises[irrep.name] = _loss((logits - shift[s])[train], labels[train]) - base
    key = set(report.key_irreps.names)
    for name, rise in rises.items():
        if name in key:
            assert rise > 10 * base + 1e-3, (name, rise)
        else:
            assert rise < 0.1 * min(rises[k] for k in key), (name, rise)


def test_the_json_reports_the_group_and_its_key_irreps(s4):
    model, task, cache, report = s4
    result = mi.analyze(model, task, cache=cache, circuit=report)
    json.dumps(result)
    assert result["group"]["name"] == "S4" and result["group"]["order"] == 24
    assert result["group"]["abelian"] is False and result["group"]["source"] == "recorded"
    assert [r["name"] for r in result["key_irreps"]] == list(report.key_irreps.names)
    assert {"name", "dim", "real_dim", "trace_similarity"} <= set(result["key_irreps"][0])
    assert result["key_frequencies"] == [] and result["circuit_confirmed"] is True
    table = result["character_table"]
    assert sum(table["class_sizes"]) == 24 and len(table["values"]) == len(table["class_sizes"]) == 5
    assert result["excluded_loss"] and all(v > 1 for v in result["excluded_loss"].values())


def test_a_cyclic_task_read_through_its_irreps_agrees_with_the_fourier_analysis():
    """The irrep path on Z/113 finds the key frequencies and confirms the clock: one analysis, two routes."""
    model, task = mi.load()
    cache = grid_cache(model, task)
    fourier = mi.verify_circuit(model, task, cache=cache)
    irreps = verify_group_circuit(model, task, cache=cache)
    assert sorted(int(k) for k in irreps.key_irreps.names) == sorted(fourier.key_freqs)
    assert irreps.passed and fourier.passed
    by_irrep = {k: irreps.measurements[f"logits without {k}"].train_loss for k in irreps.key_irreps.names}
    for k, m in fourier.losses.excluded.items():
        assert by_irrep[str(k)] == pytest.approx(m.train_loss, rel=1e-3)


def _bridge_state_dict(model, task, perm: torch.Tensor | None = None) -> dict:
    """The model as a bare bridge state dict; ``perm`` relabels the group's tokens (element i becomes token perm[i])."""
    cfg = tl_adapter.model_config(model)
    weights = {k: v.clone() for k, v in tl_adapter.canonical_weights(model).items()}
    if perm is not None:
        n = task.p
        rows = torch.empty(n, dtype=torch.long)
        rows[perm] = torch.arange(n)  # token t is element rows[t]
        weights["embed.W_E"][:n] = weights["embed.W_E"][:n][rows]
        weights["unembed.W_U"] = weights["unembed.W_U"][:, rows]
        weights["unembed.b_U"] = weights["unembed.b_U"][rows]
    bridge = tl_adapter.build_model(cfg, weights, backend="bridge")
    return {k: v.clone() for k, v in bridge.state_dict().items()}


@pytest.mark.adapter
@pytest.mark.parametrize("relabel", [False, True])
def test_a_file_without_its_group_gets_it_from_the_answers(s4, tmp_path, relabel):
    model, task, _, report = s4
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(7)) if relabel else None
    path = tmp_path / "s4.pt"
    torch.save(_bridge_state_dict(model, task, perm), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded, inferred = mi.load(path)
    notices = [str(w.message) for w in caught if "operation" in str(w.message)]
    assert len(notices) == 1 and "isomorphic to S4" in notices[0] and "explicit isomorphism" in notices[0]
    assert inferred.op_source == "inferred" and inferred.group.order == 24
    assert (inferred.op == "S4") == (not relabel) and (inferred.op.startswith("S4~") == relabel)
    again = mi.verify_circuit(loaded, inferred)
    assert again.passed and again.key_irreps.names == report.key_irreps.names


def test_answers_that_form_no_group_are_refused_with_one_clear_error():
    cfg = mi.ModelConfig.paper(24, d_model=32, d_head=8, d_mlp=64)
    untrained = tl_adapter.build_model(cfg, paper_init(cfg, seed=3))
    from modadd_interp.loading import resolve_task

    with pytest.raises(mi.TaskMismatchError, match="Nor are they a group's composition: its answers form no group"):
        resolve_task(untrained, cfg, None, None, None, {}, "untrained.pt")


def test_group_tasks_refuse_bad_input():
    with pytest.raises(mi.TaskMismatchError, match="order 120: its task has p = 120 tokens, not 121"):
        mi.ModularTask(p=121, op="S5")
    with pytest.raises(mi.TaskMismatchError, match="its task is op 'add' with p = 113"):
        mi.ModularTask(p=113, op="C113")
    with pytest.raises(mi.TaskMismatchError, match="accepted forms"):
        mi.ModularTask(p=24, op="S4x")
    model, task = mi.load(S4_FILE)
    with pytest.raises(mi.ModAddError, match="Fourier basis of Z/n"):
        mi.verify_circuit(model, task, hypotheses=[mi.Clock()])


def test_an_untrained_s4_model_has_no_key_irreps():
    cfg = mi.ModelConfig.paper(24, d_model=32, d_head=8, d_mlp=64)
    model = tl_adapter.build_model(cfg, paper_init(cfg, seed=0))
    report = mi.verify_circuit(model, mi.ModularTask(p=24, op="S4"))
    assert report.algorithm == "none" and not report.passed and report.key_irreps.confidence in ("low", "none")


@pytest.mark.parametrize(("name", "irrep"), [("S4", "(2,1,1)"), ("D7", "2"), ("A5", "(3,1,1)+"), ("A4", "(3,1)"),
                                             ("S3", "(2,1)")])
def test_a_planted_representation_clock_is_found_at_its_irrep(name, irrep):
    """Built by hand on the irrep chosen (tests/synthetic.py): the analysis must find that irrep and no other."""
    from synthetic import planted_group_model

    from modadd_interp import groups

    group = groups.by_name(name)
    cfg, weights = planted_group_model(group, irrep, d_mlp=256)
    model = tl_adapter.build_model(cfg, weights)
    report = mi.verify_circuit(model, mi.ModularTask(p=group.order, op=name))
    assert report.key_irreps.names == (group.irrep(irrep).name,)
    assert report.passed, report.verdict.line
