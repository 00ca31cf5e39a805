"""Universality (issue 26): `train --group --model`, the sweep's group and model axes, the universality panel."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from browser import external_refs, open_page, requires_chromium
from typer.testing import CliRunner

import modadd_interp as mi
from modadd_interp.cli import app
from modadd_interp.sweep import SweepSpec, SweepSpecError, read_results
from modadd_interp.sweep.cells import cell_config, failed_record
from modadd_interp.sweep.results import Results
from modadd_interp.sweep.universality import irrep_counts, key_irrep_sets

runner = CliRunner()


# ------------------------------------------------------------------------------------ train --group --model


def test_train_s5_as_an_mlp_or_a_transformer_from_the_cli(tmp_path):
    done = runner.invoke(app, ["train", str(tmp_path / "mlp"), "--group", "S5", "--model", "mlp", "--d-embed", "8",
                               "--d-mlp", "16", "--steps", "2", "--checkpoint-every", "2", "--warmup-steps", "0"])
    assert done.exit_code == 0, done.output
    info = json.loads((tmp_path / "mlp" / "run.json").read_text())
    assert info["task"]["op"] == "S5" and info["task"]["p"] == 120
    assert info["config"]["arch"] == "mlp" and info["config"]["d_embed"] == 8 and info["config"]["d_mlp"] == 16
    assert info["recipe"]["warmup_steps"] == 0
    model, task = mi.load(tmp_path / "mlp")
    assert type(model).__name__ == "HookedMLP" and task.op == "S5"

    done = runner.invoke(app, ["train", str(tmp_path / "tf"), "--group", "S5", "--model", "transformer",
                               "--d-model", "16", "--n-heads", "2", "--d-mlp", "32", "--steps", "2",
                               "--checkpoint-every", "2"])
    assert done.exit_code == 0, done.output
    config = json.loads((tmp_path / "tf" / "run.json").read_text())["config"]
    assert config.get("arch", "transformer") == "transformer" and "d_embed" not in config
    assert config["d_model"] == 16 and config["n_heads"] == 2
    assert config["d_head"] == 8 and config["d_vocab_out"] == 120


@pytest.mark.parametrize("args, message", [
    (["--model", "mlp", "--d-model", "64"], "--model mlp does not read --d-model (it takes --d-embed and --d-mlp)"),
    (["--model", "mlp", "--n-heads", "2", "--attn-rate", "0"], "does not read --n-heads, --attn-rate"),
    (["--model", "mlp", "--no-eq"], "--model mlp does not read --no-eq"),
    (["--model", "transformer", "--d-embed", "64"], "--model transformer does not read --d-embed"),
    (["--model", "cnn"], "--model is transformer or mlp, got 'cnn'"),
    (["--d-model", "30", "--n-heads", "4"], "--n-heads 4 does not divide --d-model 30"),
])
def test_bad_model_and_width_combinations_are_one_error_line(tmp_path, args, message):
    done = runner.invoke(app, ["train", str(tmp_path / "run"), "--group", "S4", "--steps", "1", *args])
    assert done.exit_code == 2
    assert message in done.output and "Traceback" not in done.output
    assert not (tmp_path / "run" / "run.json").exists()


# ------------------------------------------------------------------------------------- the sweep's axes


def test_group_and_model_axes_make_the_cells():
    spec = SweepSpec.from_dict({"group": "S4", "model": ["mlp", "transformer"], "d_embed": 32, "d_model": 16,
                                "d_mlp": 64, "seed": [0, 1], "steps": 100})
    cells = spec.cells()
    assert spec.swept == ("seed", "model") and len(cells) == 4
    assert {(c.p, c.op, c.group) for c in cells} == {(24, "S4", "S4")}
    assert cells[0].name == "p24-S4-ft0.3-wd1-lr0.001-seed0-MLP-e32-mlp64-s100"
    assert cells[1].name == "p24-S4-ft0.3-wd1-lr0.001-seed0-ar1-d16-mlp64-L1-s100"
    mlp, transformer = cell_config(cells[0]), cell_config(cells[1])
    assert (mlp.arch, mlp.d_embed, mlp.d_mlp, mlp.p) == ("mlp", 32, 64, 24)
    assert (transformer.arch, transformer.d_model, transformer.p) == ("transformer", 16, 24)
    # a transformer cell's name is the one it had before the model axis: older sweeps resume
    assert SweepSpec.from_dict({"p": 23, "steps": 300}).cells()[0].name == (
        "p23-add-ft0.3-wd1-lr0.001-seed0-ar1-d128-mlp512-L1-s300")


def test_a_group_sweeps_recorded_spec_names_its_groups_not_p_and_op():
    group = SweepSpec.from_dict({"group": ["S4", "A4"], "seed": [0, 1]})
    recorded = group.to_dict()
    assert recorded["group"] == ["S4", "A4"] and "p" not in recorded and "op" not in recorded
    assert SweepSpec.from_dict(recorded) == group
    cyclic = SweepSpec.from_dict({"p": 23, "op": "sub"}).to_dict()
    assert (cyclic["p"], cyclic["op"]) == ([23], ["sub"]) and "group" not in cyclic
    assert SweepSpec.from_dict(cyclic) == SweepSpec.from_dict({"p": 23, "op": "sub"})


@pytest.mark.parametrize("bad, message", [
    ({"group": "S4", "p": 31}, "give the task by p and op or by group, not both"),
    ({"group": ["S4", "none"]}, "give the task by p and op or by group, not both"),
    ({"group": "Q7"}, "group 'Q7'"),
    ({"model": "cnn"}, "model is one of transformer, mlp, got 'cnn'"),
])
def test_bad_group_and_model_values_are_spec_errors(bad, message):
    with pytest.raises(SweepSpecError, match=message):
        SweepSpec.from_dict(bad)


def test_an_axis_the_model_does_not_read_cannot_be_swept():
    with pytest.raises(SweepSpecError, match="two cells would be the same run"):
        SweepSpec.from_dict({"group": "S4", "model": "mlp", "d_model": [32, 64]}).cells()
    with pytest.raises(SweepSpecError, match="two cells would be the same run"):
        SweepSpec.from_dict({"p": 7, "d_embed": [32, 64]}).cells()


def test_a_record_written_before_the_new_axes_counts_as_finished(tmp_path):
    cell = SweepSpec.from_dict({"p": 7, "steps": 40}).cells()[0]
    record = failed_record(cell, "")
    old_spec = {k: v for k, v in cell.to_dict().items() if k not in ("group", "model", "d_embed", "warmup_steps")}
    record.update(status="ok", cell_spec=old_spec)
    results = Results(tmp_path)
    results.append(record)
    assert Results(tmp_path).is_finished(cell)
    mlp = SweepSpec.from_dict({"p": 7, "steps": 40, "model": "mlp"}).cells()[0]
    record = failed_record(mlp, "")
    record.update(status="ok", cell_spec={**old_spec, "model": "transformer"})
    results.append(record)
    assert not Results(tmp_path).is_finished(mlp)


def test_an_s4_mlp_sweep_writes_the_group_model_and_key_irreps_columns(tmp_path):
    done = runner.invoke(app, ["sweep", "--group", "S4", "--model", "mlp", "--d-embed", "16", "--d-mlp", "32",
                               "--seed", "0,1", "--steps", "40", "--checkpoint-every", "20", "--lr", "0.01",
                               "--executor", "serial", "--quiet", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "2 cells: 2 ok" in done.output
    csv = pd.read_csv(tmp_path / "results.csv")
    assert {"group", "model", "d_embed", "key_irreps", "n_key_irreps"} <= set(csv.columns)
    assert list(csv["group"]) == ["S4", "S4"] and list(csv["model"]) == ["mlp", "mlp"] and (csv["p"] == 24).all()
    for text, n in zip(csv["key_irreps"], csv["n_key_irreps"], strict=True):
        assert isinstance(json.loads(text), list) and len(json.loads(text)) == n
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    for record in records:
        assert record["key_irreps"] == [r["name"] for r in record["analysis"]["key_irreps"]]
        assert record["final_step"] == 40 and record["label"] in ("comprehension", "grokking", "memorization",
                                                                  "confusion")
    assert (csv["train_threshold_step"].isna() | (csv["train_threshold_step"] % 20 == 0)).all()


# ------------------------------------------------------------------------------------ the universality panel


#: A precomputed population: 4 S4 MLP seeds and 3 S4 transformer seeds with known key irreps.
PANEL_ROWS = [
    ("mlp", 0, ["(3,1)", "(1,1,1,1)"]), ("mlp", 1, ["(3,1)"]), ("mlp", 2, ["(1,1,1,1)", "(3,1)"]),
    ("mlp", 3, ["(2,1,1)"]),
    ("transformer", 0, ["(2,1,1)"]), ("transformer", 1, ["(2,1,1)"]), ("transformer", 2, []),
]


def _panel_sweep(out) -> None:
    """A sweep directory of :data:`PANEL_ROWS` (records as run_cell writes them, no training)."""
    spec = SweepSpec.from_dict({"group": "S4", "model": ["mlp", "transformer"], "seed": [0, 1, 2, 3],
                                "steps": 100})
    results = Results(out)
    for cell in spec.cells():
        match = [k for m, s, k in PANEL_ROWS if (m, s) == (cell.model, cell.seed)]
        if not match:
            continue
        record = failed_record(cell, "")
        accuracy = 0.5 if (cell.model, cell.seed) == ("mlp", 3) else 1.0     # one seed did not generalize
        record.update(status="ok", error=None, label="grokking", test_accuracy=accuracy, key_irreps=match[0],
                      n_key_irreps=len(match[0]), key_frequencies=[], n_key_frequencies=0, algorithm="clock")
        results.append(record)


def test_the_panel_counts_irreps_and_distinct_sets(tmp_path):
    _panel_sweep(tmp_path)
    frame = read_results(tmp_path)
    counts = irrep_counts(frame).set_index(["population", "irrep"])
    assert counts.loc[("S4 · mlp", "(3,1)"), "runs_key"] == 3 and counts.loc[("S4 · mlp", "(3,1)"), "runs"] == 4
    assert counts.loc[("S4 · mlp", "(1,1,1,1)"), "runs_key"] == 2
    assert counts.loc[("S4 · transformer", "(2,1,1)"), "runs_key"] == 2
    assert ("S4 · transformer", "(3,1)") not in counts.index
    sets = key_irrep_sets(frame)
    mlp = sets[sets["population"] == "S4 · mlp"]
    assert mlp.values[:, 1:6].tolist() == [["(1,1,1,1) + (3,1)", 2, 4, 2, "0, 2"], ["(3,1)", 1, 4, 1, "1"],
                                           ["(2,1,1)", 1, 4, 0, "3"]]
    transformer = sets[sets["population"] == "S4 · transformer"]
    assert transformer.values[:, 1:6].tolist() == [["(2,1,1)", 2, 3, 2, "0, 1"], ["none", 1, 3, 1, "2"]]


@requires_chromium
def test_the_sweep_report_shows_the_universality_panel(tmp_path):
    _panel_sweep(tmp_path)
    done = runner.invoke(app, ["sweep-report", str(tmp_path)])
    assert done.exit_code == 0, done.output
    page = tmp_path / "report" / "index.html"
    assert external_refs(page.read_text()) == []
    opened = open_page(page, screenshot=tmp_path / "panel.png", timeout_ms=120_000)
    assert opened.console_errors == [] and opened.page_errors == [] and opened.external_requests == []
    assert opened.plotly_divs >= 5 and opened.plotly_drawn == opened.plotly_divs
    text = opened.text
    assert "Universality: do seeds converge?" in text and "How often each irrep is key across seeds" in text
    assert "(1,1,1,1) + (3,1)" in text and "Distinct sets of key irreps per population" in text
    assert "S4 · mlp (4 runs)" in text and "S4 · transformer (3 runs)" in text   # the bar chart's legend
    assert "3/4" in text and "2/3" in text                                          # bar labels: runs of runs
