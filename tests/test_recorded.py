"""Every figure users rely on, unchanged: ``analyze --json`` against outputs recorded before the redesign
(tests/data/recorded/README.md), on TL 4 and TL 3.9.

Compared: the figures of the Fourier analysis (losses, key frequencies, neuron clusters, embedding and logit probes,
restricted and excluded losses, the hypotheses' fits and loss recovered, the isolated circles, Zhong et al.'s
diagnostics, the ablation table, patching). Keys added since are allowed; the verdict's line and the claims are
compared for the algorithm and ``circuit_confirmed`` only, since the verdict's wording gained confidence and margins.
Numbers must agree to 1e-4 relative (1e-10 absolute): the losses are float64 sums over float32 logits, whose rounding
differs between CPUs (MKL kernels) by a few float32 ulps of logits of magnitude ~30 (relative ~1e-6 on a loss), so
1e-4 holds on any CPU while any real change of a figure moves it by far more.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modadd_interp.cli import app

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "recorded"
SOURCES = {
    "shipped": None,
    "wd_10-1_mod_addition_loss_curve.pth": DATA / "paper" / "wd_10-1_mod_addition_loss_curve.pth",
    "model_p99zdpze5l.pt": DATA / "clock_and_pizza" / "model_p99zdpze5l.pt",
    "model_l8k1hzciux.pt": DATA / "clock_and_pizza" / "model_l8k1hzciux.pt",
    "op_sub_bridge.pt": DATA / "trained" / "op_sub_bridge.pt",
    "op_mul_bridge.pt": DATA / "trained" / "op_mul_bridge.pt",
    "op_div_bridge.pt": DATA / "trained" / "op_div_bridge.pt",
}
FIGURES = ("p", "op", "accuracy", "loss", "train_loss", "test_loss", "train_accuracy", "test_accuracy",
           "key_frequencies", "neuron_clusters", "neurons", "embedding", "logits", "attention", "restricted",
           "restricted_loss", "excluded_loss", "excluded_all", "hypotheses", "loss_recovered", "circles",
           "gradient_symmetricity", "distance_irrelevance", "circularity", "ablation_table", "patching",
           "outside_group", "algorithm", "circuit_confirmed")


def differences(recorded, now, path: str = "") -> list[str]:
    """Where ``now`` departs from ``recorded`` (keys only ``now`` has are allowed)."""
    out = []
    if isinstance(recorded, dict):
        if not isinstance(now, dict):
            return [f"{path}: {type(recorded).__name__} -> {type(now).__name__}"]
        for key, value in recorded.items():
            out += [f"{path}.{key}: missing"] if key not in now else differences(value, now[key], f"{path}.{key}")
    elif isinstance(recorded, list):
        if not isinstance(now, list) or len(now) != len(recorded):
            return [f"{path}: {recorded!r} -> {now!r}"]
        for i, (a, b) in enumerate(zip(recorded, now, strict=True)):
            out += differences(a, b, f"{path}[{i}]")
    elif isinstance(recorded, float) and isinstance(now, (int, float)) and not isinstance(now, bool):
        if not (math.isnan(recorded) and math.isnan(now)) and not math.isclose(recorded, now, rel_tol=1e-4,
                                                                               abs_tol=1e-10):
            out.append(f"{path}: {recorded!r} -> {now!r}")
    elif recorded != now:
        out.append(f"{path}: {recorded!r} -> {now!r}")
    return out


def test_the_comparison_sees_a_moved_figure():
    assert differences({"a": 1.0, "b": [1, 2]}, {"a": 1.0 + 1e-9, "b": [1, 2], "c": 3}) == []
    assert differences({"a": 1.0}, {"a": 1.001}) == [".a: 1.0 -> 1.001"]
    assert differences({"a": [1, 2]}, {"a": [1]}) and differences({"a": 1}, {}) == [".a: missing"]


@pytest.mark.adapter
@pytest.mark.parametrize("name", list(SOURCES))
def test_every_recorded_figure_is_unchanged(name):
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    source = SOURCES[name]
    result = CliRunner().invoke(app, ["analyze", *([str(source)] if source else []), "--json"])
    assert result.exit_code == 0, result.output
    now = json.loads(result.stdout[result.stdout.index("{"):])
    moved = [d for key in FIGURES if key in recorded for d in differences(recorded[key], now.get(key), key)]
    assert moved == [], "\n".join(moved[:30])
