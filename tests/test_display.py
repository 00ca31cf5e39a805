"""Rich display: every public result's ``_repr_html_`` leads with its headline, holds no URL or script, and its
``__repr__`` fits on a few lines; ``mi.phases``; the hook a new result class (a sweep's) opts into."""

from __future__ import annotations

import dataclasses
import html
import math
import re

import pandas as pd
import pytest
import torch
from conftest import assert_unchanged, model_snapshot, small_config

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import paper_init
from modadd_interp.display import REPR_DETAIL_LINES, Displayable, Phases, Summary, render_html
from modadd_interp.probes import grid_cache, probe_attention
from modadd_interp.progress import detect_phases, phase_checks
from modadd_interp.slt import LLCEstimate

MAX_REPR_LINES = 1 + REPR_DETAIL_LINES + 1  # the headline, the details, "… more lines"


@pytest.fixture(scope="module")
def shipped():
    """The shipped model's report and attention probe (one grid pass), and the model's state before."""
    model, task = mi.load()
    with torch.no_grad():
        model(task.inputs[:2])  # a bridge installs two internal pre-hooks on its first forward: count after it
    before = model_snapshot(model)
    cache = grid_cache(model, task)
    report = mi.verify_circuit(model, task, cache=cache)
    return model, before, report, probe_attention(model, task, cache=cache)


def progress_frame(grokked: bool = True) -> pd.DataFrame:
    """A progress frame built by hand (memorized at 1000; test loss falls 7 decades from 4000 when it groks),
    its phases found by the package's own rule."""
    steps = list(range(0, 10_000, 100))
    fall = [1.0 if s <= 4000 or not grokked else max(-6.0, 1.0 - 7.0 * (s - 4000) / 3500) for s in steps]
    frame = pd.DataFrame({
        "step": steps, "train_accuracy": [min(1.0, s / 1000) for s in steps],
        "test_accuracy": [1.0 if grokked and s >= 6000 else 0.05 for s in steps],
        "train_loss": [1e-3] * len(steps), "test_loss": [10**v for v in fall],
        "restricted_loss": [10 ** (v - 1) for v in fall], "excluded_loss": [0.1 + s / 1e4 for s in steps],
        "gini_we": [0.2 + s / 2e4 for s in steps], "gini_wl": [0.3 + s / 2e4 for s in steps],
        "total_sq_weights": [1000 - s / 20 for s in steps],
    })
    frame.attrs["key_freqs"] = [1, 5]
    frame.attrs["phases"] = detect_phases(frame)
    frame.attrs["phase_checks"] = phase_checks(frame, frame.attrs["phases"])
    return frame


def llc_estimate(healthy: bool) -> LLCEstimate:
    return LLCEstimate(26.5, 0.3, (26.2, 26.4, 26.6, 26.8), 1.2e-7, healthy,
                       () if healthy else ("chain 2 diverged: a draw's loss exceeds init_loss + log(p)",),
                       {"lr": 1e-4, "n_beta": 1000.0, "localization": 300.0}, ((0.1, 0.2),) * 4)


def every_result(shipped) -> dict[str, Displayable]:
    _, _, report, attention = shipped
    return {
        "KeyFrequencies": report.key_frequencies, "EmbeddingProbe": report.embedding, "NeuronProbe": report.neurons,
        "AttentionProbe": attention, "LogitProbe": report.logits, "CircuitReport": report,
        "Claim": report.claims[0], "Verdict": report.verdict, "HypothesisTest": report.hypotheses["clock"],
        "CircleIsolation": report.circles, "ZhongDiagnostics": report.diagnostics, "FourierLosses": report.losses,
        "AblationTable": report.table, "PatchingResult": report.patching, "Phases": mi.phases(progress_frame()),
        "LLCEstimate": llc_estimate(healthy=True),
    }


def check_display(obj: Displayable) -> str:
    """Assert the rules every display follows; return the HTML."""
    summary = obj._summary()
    page = obj._repr_html_()
    headline = html.escape(summary.headline)
    assert headline in page, f"{type(obj).__name__}: the headline is not in the HTML"
    if "<table" in page:
        assert page.index(headline) < page.index("<table"), "the headline comes first"
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered, "no external URL"
    assert "<script" not in lowered and "<script src=" not in lowered and "<img" not in lowered
    assert "url(" not in lowered and "<link" not in lowered
    if callable(getattr(obj, "plot", None)):
        assert ".plot()" in page
    text = repr(obj)
    lines = text.splitlines()
    assert lines[0] == f"{type(obj).__name__}: {summary.headline}"[: len(lines[0])]
    assert len(lines) <= MAX_REPR_LINES and all(len(line) <= 160 for line in lines), text
    assert "tensor(" not in text and "array(" not in text
    return page


def test_every_result_displays_its_headline_first_and_offline(shipped):
    results = every_result(shipped)
    assert len(results) == 16
    for name, obj in results.items():
        assert type(obj).__name__ == name and isinstance(obj, Displayable)
        check_display(obj)


def test_headlines_say_what_matters(shipped):
    model, before, report, attention = shipped
    results = every_result(shipped)
    assert results["KeyFrequencies"]._summary().headline == "key frequencies [1, 5, 7, 29] (high confidence)"
    assert results["CircuitReport"]._summary().headline == report.verdict.line
    assert results["Verdict"]._summary().headline == report.verdict.line
    assert report.verdict.line.startswith("clock at k = [1, 5, 7, 29]")
    page = results["CircuitReport"]._repr_html_()
    assert ">PASS</span>" in page and "#1a7f37" in page  # confirmed: the green badge
    assert repr(report).startswith(f"CircuitReport: {report.verdict.line}")
    first_claim = report.claims[0]
    assert repr(first_claim).startswith(f"Claim: PASS: {first_claim.name}")
    assert f"{report.neurons.cluster_sizes()['29']}" in repr(report.neurons)
    assert repr(attention).startswith("AttentionProbe: 4 head(s)")
    assert_unchanged(model, before)  # displaying reads results only; the analysis left the model as it was


def test_a_failing_report_shows_red_and_says_why():
    cfg = small_config(13)
    model = tl_adapter.build_model(cfg, paper_init(cfg, seed=11))
    report = mi.verify_circuit(model, mi.ModularTask(13))
    assert not report.passed
    page = check_display(report)
    assert ">FAIL</span>" in page and "#b42318" in page
    assert html.escape(report.verdict.line) in page and "not confirmed" in page
    assert check_display(report.verdict) and check_display(report.key_frequencies)
    assert "(none confidence)" in repr(report.key_frequencies)
    for claim in report.claims:
        check_display(claim)


def test_not_applicable_claims_and_unhealthy_estimates():
    claim = mi.Claim("a single path", "patching", "fraction restored", None, math.nan, math.nan, ">=", None,
                     "the model has 2 layers", applicable=False)
    assert repr(claim) == "Claim: N/A: a single path\n  the model has 2 layers"
    check_display(claim)
    unhealthy = check_display(llc_estimate(healthy=False))
    assert "UNHEALTHY" in unhealthy and "chain 2 diverged" in unhealthy and ">FAIL</span>" in unhealthy


def test_phases_of_a_progress_frame():
    phases = mi.phases(progress_frame())
    assert isinstance(phases, Phases) and phases.grokked
    assert (phases.memorization_end, phases.circuit_formation_end, phases.cleanup_end) == (1000, 4400, 7200)
    assert repr(phases).splitlines()[0] == ("Phases: grokked: memorization to step 1000, circuit formation to step "
                                            "4400, cleanup to step 7200")
    table = phases.to_frame()
    assert table["phase"].tolist() == ["memorization", "circuit formation", "cleanup"]
    assert table["from step"].tolist() == [0, 1000, 4400] and table["to step"].tolist() == [1000, 4400, 7200]
    assert table["test_loss at end"].iloc[2] == pytest.approx(progress_frame().set_index("step").loc[7200,
                                                                                                   "test_loss"])
    assert len(phases.plot().data) >= 4  # the progress figure, phases shaded
    flat = mi.phases(progress_frame(grokked=False))
    assert not flat.grokked and repr(flat).startswith("Phases: no grokking detected (memorized by step 1000)")
    assert ">FAIL</span>" in check_display(flat)


@pytest.mark.parametrize("bad", [pd.DataFrame({"step": [1, 2]}), {"phases": {}}, None])
def test_phases_refuses_what_is_not_a_progress_frame(bad):
    with pytest.raises(mi.ModAddError, match="progress_measures"):
        mi.phases(bad)


def test_text_is_escaped_and_tables_are_cut():
    summary = Summary("<b>bold</b> & <script>alert(1)</script>", status=None, details=["a < b"],
                      rows=[{"x": i, "y": f"<i>{i}</i>"} for i in range(30)])
    page = render_html(summary, "Demo<>")
    assert "<b>" not in page and "<script" not in page and "<i>" not in page and "Demo<>" not in page
    assert "&lt;script&gt;" in page and "first 12 of 30 rows" in page
    assert page.count("<tr>") == 1 + 12


def test_a_new_result_class_opts_in_with_one_method():
    """The hook a sweep's results use: subclass Displayable, write _summary(), declare repr=False."""

    @dataclasses.dataclass(frozen=True, repr=False)
    class SweepResult(Displayable):
        frame: pd.DataFrame

        def to_frame(self) -> pd.DataFrame:
            return self.frame

        def _summary(self) -> Summary:
            grokked = int(self.frame["grokked"].sum())
            return Summary(f"{grokked} of {len(self.frame)} runs grokked", status=grokked > 0, rows=self.frame)

    result = SweepResult(pd.DataFrame({"p": [23, 59, 113], "grokked": [True, False, True],
                                       "weights": [torch.zeros(3)] * 3}))
    assert repr(result) == "SweepResult: 2 of 3 runs grokked"
    page = check_display(result)
    assert "2 of 3 runs grokked" in page and "<code>.to_frame()</code>" in page and ".plot()" not in page
    assert re.search(r"<td[^>]*>59</td>", page)
