"""One-hidden-layer MLPs (modadd_interp/mlp.py): the forward pass against a plain re-statement, their canonical
(transformer-layout) weights, hooks that behave like TransformerLens's, training, and the analysis end to end on an
S4 MLP trained here (tests/data/trained/group_S4_mlp.safetensors, scripts/make_test_models.py group_S4_mlp)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from browser import open_page, requires_chromium
from conftest import assert_unchanged, model_snapshot

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import ModelConfig
from modadd_interp.errors import ArchitectureError
from modadd_interp.mlp import HookedMLP, MLPConfig, from_canonical, to_canonical
from modadd_interp.probes import grid_cache

pytestmark = pytest.mark.adapter

S4_MLP = Path(__file__).parent / "data" / "trained" / "group_S4_mlp.safetensors"
VARIANTS = [dict(embed="concat"), dict(embed="sum"), dict(embed="concat", shared_embed=True),
            dict(act_fn="gelu", bias=True), dict(act_fn="quad", embed="sum", shared_embed=True)]


def plain_forward(cfg: MLPConfig, own: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[batch, d_vocab_out]``: the MLP written out directly from its definition (mlp.py's docstring)."""
    ey = own["embed_x"] if cfg.shared_embed else own["embed_y"]
    inp = (torch.cat([own["embed_x"][x], ey[y]], -1) if cfg.embed == "concat" else own["embed_x"][x] + ey[y])
    pre = inp @ own["W_in"] + own["b_in"]
    act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "quad": lambda t: t * t}[cfg.act_fn](pre)
    return act @ own["W_U"] + own["b_U"]


def _randomized(cfg: MLPConfig, seed: int = 1) -> HookedMLP:
    model = HookedMLP(cfg, seed=seed)
    with torch.no_grad():  # biases nonzero, so that a lost bias shows
        model.b_in.normal_(generator=torch.Generator().manual_seed(seed))
        model.b_U.normal_(generator=torch.Generator().manual_seed(seed + 1))
    return model.eval()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={w}" for k, w in v.items()))
def test_the_forward_pass_is_the_definition_and_the_canonical_weights_compute_it(variant):
    cfg = MLPConfig(n=7, d_embed=5, d_mlp=11, **variant)
    model = _randomized(cfg)
    x, y = torch.arange(7).repeat_interleave(7), torch.arange(7).repeat(7)
    own = {k: v.detach() for k, v in model.own_weights().items()}
    with torch.no_grad():
        logits = model(torch.stack([x, 7 + y], 1))[:, -1]
    expected = plain_forward(cfg, own, x, y)
    # the same float32 products summed in another order: |Δ| <= d * 2^-24 * sum|terms| (d <= 11), well under 1e-5
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    # the canonical (transformer-layout) weights round-trip, and a model built from them is the same function
    canonical = to_canonical(cfg, own)
    for name, value in from_canonical(cfg, canonical).items():
        assert torch.equal(value, own[name].float()), name
    config = ModelConfig.mlp(7, d_embed=5, d_mlp=11, embed=cfg.embed, shared_embed=cfg.shared_embed,
                             act_fn=cfg.act_fn, mlp_bias=cfg.bias)
    rebuilt = tl_adapter.build_model(config, canonical)
    assert tl_adapter.backend_name(rebuilt) == "mlp" and tl_adapter.model_config(rebuilt) == config
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(torch.stack([x, 7 + y], 1))[:, -1], logits, rtol=0, atol=0)


def test_the_analysis_first_pass_reads_the_same_logits_as_the_model():
    cfg = MLPConfig(n=12, d_embed=6, d_mlp=20, act_fn="relu", bias=True)
    model = _randomized(cfg, seed=3)
    task = mi.ModularTask(p=12, op="add", frac_train=0.5, seed=0)
    cache = grid_cache(model, task)
    assert cache.computed_from_weights  # the weight pass agreed with the model's own logits on a sample
    logits = torch.cat([piece.logits for piece in cache.chunks()])
    with torch.no_grad():
        direct = model(tl_adapter.model_config(model).encode(cache.grid.pairs))[:, -1, :12]
    # two float32 computations of the same sums in other orders: ~1e-6 of |logits| (<= ~10 here)
    torch.testing.assert_close(logits.float(), direct, rtol=1e-5, atol=1e-5)


def test_hooks_carry_transformer_lens_names_and_an_edit_reaches_the_logits():
    cfg = MLPConfig(n=5, d_embed=3, d_mlp=8, bias=True)
    model = _randomized(cfg)
    tokens = torch.tensor([[1, 5 + 2], [4, 5 + 0]])
    logits, cache = model.run_with_cache(tokens)
    assert cache["blocks.0.mlp.hook_post"].shape == (2, 1, 8)
    assert cache["hook_embed"].shape == (2, 2, cfg.d_model)
    assert cache["blocks.0.attn.hook_z"].shape[2] == 0  # no heads
    with tl_adapter.hooked(model, [("blocks.0.mlp.hook_post", lambda act: torch.zeros_like(act))]):
        zeroed = model(tokens)
    torch.testing.assert_close(zeroed[:, -1], model.b_U.detach().expand(2, -1))
    assert tl_adapter.hook_count(model) == 0
    assert not torch.equal(model(tokens), zeroed) and torch.equal(model(tokens), logits)


def test_bad_tokens_and_backends_are_refused():
    cfg = ModelConfig.mlp(6, d_embed=4, d_mlp=8)
    model = tl_adapter.build_model(cfg, tl_adapter.canonical_weights(HookedMLP(cfg.mlp_config())))
    with pytest.raises(ArchitectureError, match=r"\[batch, 2\] tokens"):
        model(torch.tensor([[1, 2, 3]]))
    with pytest.raises(ArchitectureError, match="cannot build a mlp"):
        tl_adapter.build_model(cfg, tl_adapter.canonical_weights(model), backend="bridge")
    with pytest.raises(ArchitectureError, match="d_embed"):
        MLPConfig(n=6, d_embed=0)


def test_training_an_mlp_resumes_bit_identically(tmp_path):
    task = mi.ModularTask(p=24, op="S4", frac_train=0.7, seed=0)
    cfg = ModelConfig.mlp(24, d_embed=16, d_mlp=16)
    recipe = dict(lr=1e-2, weight_decay=1.0, warmup_steps=0, checkpoint_every=10, progress=False)
    mi.train(task, tmp_path / "whole", config=cfg, steps=20, **recipe)
    mi.train(task, tmp_path / "halves", config=cfg, steps=10, **recipe)
    mi.train(task, tmp_path / "halves", config=cfg, steps=20, **recipe)
    whole, _ = mi.load(tmp_path / "whole")
    halves, loaded = mi.load(tmp_path / "halves")
    assert isinstance(whole, HookedMLP) and loaded.op == "S4"
    for name, value in whole.own_weights().items():
        assert torch.equal(value, halves.own_weights()[name]), name
    assert torch.equal(whole.b_in, torch.zeros(16)) and torch.equal(whole.b_U, torch.zeros(24))  # frozen: no biases
    assert set(tl_adapter.component_parameters(whole)) == {"embed", "l0 mlp", "unembed"}
    assert tl_adapter.component_parameters(whole)["unembed"] == {"W_U": None}


@pytest.fixture(scope="module")
def s4_mlp():
    model, task = mi.load(S4_MLP)
    before = model_snapshot(model)
    return model, task, before, mi.analyze(model, task)


def test_an_s4_mlp_is_read_through_its_irreps(s4_mlp):
    model, task, before, result = s4_mlp
    assert_unchanged(model, before)
    assert tl_adapter.foreign_hook_count(model) == 0
    assert result["architecture"]["arch"] == "mlp" and result["attention"] is None
    assert result["test_accuracy"] >= 0.99
    names = [r["name"] for r in result["key_irreps"]]
    assert names and result["key_irrep_detection"]["confidence"] == "high"
    assert result["circuit_confirmed"] and result["verdict"]["algorithm"] == "clock"
    claims = {c["name"]: c for c in result["claims"]}
    heads = claims["the attention heads are necessary"]
    assert heads["applicable"] is False and heads["passed"] is None and "no attention" in heads["detail"]
    # the key irreps suffice: their restricted loss is within the claim's bound; and removing them breaks the model
    assert result["restricted_loss"] <= max(2 * result["test_loss"], 1e-3)
    assert result["excluded_all"]["accuracy"] <= 0.5


@requires_chromium
def test_an_mlp_report_draws_without_an_attention_section(s4_mlp, tmp_path):
    model, task, before, _ = s4_mlp
    out = mi.render_report(model, task, tmp_path / "report")
    assert_unchanged(model, before)
    page = open_page(out, timeout_ms=120_000)
    assert page.console_errors == [] and page.page_errors == []
    assert page.plotly_divs >= 2 and page.plotly_drawn == page.plotly_divs  # the irrep spectrum, neurons by irrep
    assert page.circuitsvis_divs == 0
    assert "The attention" not in page.text and "clock at ρ" in page.text


def test_the_group_verdict_records_the_held_out_accuracy(s4_mlp):
    _, _, _, result = s4_mlp
    verdict = result["verdict"]
    assert verdict["held_out_accuracy"] == result["test_accuracy"] and verdict["generalizes"] is True
    assert verdict["basis"] == "held-out pairs"


def test_progress_measures_refuse_a_group_run_in_one_line(tmp_path):
    task = mi.ModularTask(p=24, op="S4", frac_train=0.7, seed=0)
    mi.train(task, tmp_path / "run", config=ModelConfig.mlp(24, d_embed=8, d_mlp=8), steps=4, checkpoint_every=2,
             progress=False)
    with pytest.raises(mi.TaskMismatchError, match="progress measures are defined for .* cyclic task; S4"):
        mi.progress_measures(tmp_path / "run")


def test_the_llc_per_component_of_an_mlp(s4_mlp):
    """The SLT lens reads an MLP's components (issue 28: "MLPs included"): the embeddings, the hidden layer and the
    unembedding, each a healthy estimate on the trained S4 MLP, their weights partitioning the model's."""
    slt = pytest.importorskip("modadd_interp.slt")
    pytest.importorskip("devinterp")
    model, task, before, _ = s4_mlp
    frame = slt.llc(model, task, components=["all", slt.FULL], num_chains=2, num_draws=40)
    assert_unchanged(model, before)
    assert frame["component"].tolist() == ["embed", "l0 mlp", "unembed", slt.FULL]
    assert frame["healthy"].all(), frame[["component", "reasons"]].to_string()
    assert (frame["llc_mean"] > 0).all()
    parts = frame.set_index("component")["n_params"]
    trained = [p for name, p in model.named_parameters() if model.mlp_cfg.bias or name not in ("b_in", "b_U")]
    assert parts[["embed", "l0 mlp", "unembed"]].sum() == sum(p.numel() for p in trained)  # untrained biases: none
    assert parts[slt.FULL] == sum(p.numel() for p in model.parameters())
    tokens = torch.tensor([[0, 24 + 1], [3, 24 + 5]])  # (x, n + y)
    with torch.no_grad():
        assert model(tokens, return_type=None) is None and model(tokens).shape == (2, 1, 24)
    with pytest.raises(ArchitectureError, match="return_type='logits' or None"):
        model(tokens, return_type="loss")
