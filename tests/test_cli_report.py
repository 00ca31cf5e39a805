"""``modadd-interp report`` and ``analyze`` say where the report went and how to open it; ``--open`` opens it in
the user's browser when there is one and says so when there is none, never failing because of it."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modadd_interp import cli
from modadd_interp.cli import app, open_in_browser, report_command

DATA = Path(__file__).parent / "data"
TWO_LAYER = DATA / "trained" / "family_2layer.safetensors"
PIZZA = DATA / "clock_and_pizza" / "model_p99zdpze5l.pt"


class FakeBrowser:
    name = "fake-browser"

    def __init__(self, result: bool = True, error: Exception | None = None) -> None:
        self.result, self.error, self.opened = result, error, []

    def open(self, url: str) -> bool:
        if self.error is not None:
            raise self.error
        self.opened.append(url)
        return self.result


def no_browser():
    raise webbrowser.Error("could not locate runnable browser")


def test_open_in_browser_never_raises(monkeypatch):
    monkeypatch.setattr(webbrowser, "get", no_browser)
    assert open_in_browser("file:///r/index.html").startswith("no web browser found on this machine")
    fake = FakeBrowser()
    monkeypatch.setattr(webbrowser, "get", lambda: fake)
    assert open_in_browser("file:///r/index.html") == "opened in your web browser (fake-browser)"
    assert fake.opened == ["file:///r/index.html"]
    monkeypatch.setattr(webbrowser, "get", lambda: FakeBrowser(result=False))
    assert "did not open the page" in open_in_browser("file:///r/index.html")
    monkeypatch.setattr(webbrowser, "get", lambda: FakeBrowser(error=OSError("no display")))
    assert open_in_browser("file:///r/index.html") == ("could not open a web browser (OSError: no display); open the "
                                                       "address above yourself")


def test_report_command_is_what_to_run():
    assert report_command(None) == "modadd-interp report --out report"
    assert report_command("my runs/ckpt.pth", op="sub", frac_train=0.5, seed=3, n_heads=2) == (
        "modadd-interp report 'my runs/ckpt.pth' --out report --op sub --frac-train 0.5 --seed 3 --n-heads 2")


@pytest.mark.slow
def test_report_prints_where_it_went_and_opens_without_a_browser(tmp_path, monkeypatch):
    """A two-layer model's report (its neuron figures read the readout layer's clusters), --open with no browser."""
    monkeypatch.setattr(webbrowser, "get", no_browser)
    out = tmp_path / "two layers"
    result = CliRunner().invoke(app, ["report", str(TWO_LAYER), "--out", str(out), "--open"])
    assert result.exit_code == 0, result.output
    page = out / "index.html"
    assert page.is_file()
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"report written to {page} (") and lines[0].endswith("MB; one offline file)")
    assert lines[1] == f"open it in a web browser: {page.resolve().as_uri()}"
    assert lines[2].startswith("no web browser found on this machine")
    assert "Two neurons from each cluster of the readout layer" in page.read_text()


@pytest.mark.slow
def test_analyze_writes_the_report_with_report_and_opens_it(tmp_path, monkeypatch):
    fake = FakeBrowser()
    monkeypatch.setattr(webbrowser, "get", lambda: fake)
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["analyze", str(PIZZA), "--json", "--report", str(out), "--open"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["algorithm"] == "pizza"  # stdout stays one JSON object
    page = (out / "index.html").resolve()
    assert f"report written to {out / 'index.html'}" in result.stderr
    assert f"open it in a web browser: {page.as_uri()}" in result.stderr
    assert "opened in your web browser (fake-browser)" in result.stderr
    assert fake.opened == [page.as_uri()]
    html = page.read_text()  # no '=' token, split unknown: no train/test rows
    assert "cross-entropy of the answer at the last position (b); the split is unknown" in html
    assert "<td>train</td>" not in html and "<td>all</td>" in html


@pytest.mark.slow
def test_analyze_without_report_prints_the_command(monkeypatch):
    monkeypatch.setattr(webbrowser, "get", no_browser)
    result = CliRunner().invoke(app, ["analyze", str(PIZZA)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"HTML report: modadd-interp report {PIZZA} --out report"


def test_open_needs_a_report():
    result = CliRunner().invoke(app, ["analyze", "--open"])
    assert result.exit_code == 2
    assert "--open opens the HTML report: give --report DIR too" in result.stderr
    assert cli.webbrowser is webbrowser  # the module the tests patch is the one the CLI uses


def test_analyze_with_report_analyses_once(monkeypatch, tmp_path):
    """``analyze --report`` runs one grid pass and one analysis (verify_circuit's single sweep of its plans), and the
    report reads them."""
    from modadd_interp.probes import cache as cache_module

    calls = {"cache": 0, "plans": 0}
    original_init, original_plans = cache_module.GridCache.__init__, cache_module.GridCache.measure_plans

    def counting_init(self, *args, **kwargs):
        calls["cache"] += 1
        original_init(self, *args, **kwargs)

    def counting_plans(self, *args, **kwargs):
        calls["plans"] += 1
        return original_plans(self, *args, **kwargs)

    monkeypatch.setattr(cache_module.GridCache, "__init__", counting_init)
    monkeypatch.setattr(cache_module.GridCache, "measure_plans", counting_plans)
    result = CliRunner().invoke(app, ["analyze", str(TWO_LAYER), "--json", "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert calls == {"cache": 1, "plans": 1}
    assert (tmp_path / "r" / "index.html").exists()
