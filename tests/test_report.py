"""The HTML report renders fully offline in headless Chromium, with every figure drawn."""

from __future__ import annotations

import subprocess
import sys

import pytest
from browser import external_refs, open_page, requires_chromium
from conftest import PAPER_FILES

pytestmark = [pytest.mark.slow, requires_chromium]


def test_report_on_a_paper_checkpoint_renders_offline(tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "modadd_interp.cli", "report", str(PAPER_FILES["wd"]),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    page = out / "index.html"
    html = page.read_text()
    assert external_refs(html) == [], "the page's markup references the network"
    report = open_page(page, screenshot=tmp_path / "report.png", timeout_ms=120_000)
    assert report.console_errors == [] and report.page_errors == []
    assert report.external_requests == []
    assert report.plotly_divs >= 12 and report.plotly_drawn == report.plotly_divs
    assert report.circuitsvis_divs == 3 and report.circuitsvis_rendered == 3
    for heading in ("Model and task", "The embedding", "The neurons", "The attention", "The logit readout",
                    "Clock or pizza", "The claims"):
        assert heading in html
    assert "clock at k = [6, 23, 37, 39, 41]" in html
    assert "cross-entropy of the answer at the last position (&#x27;=&#x27;)</figcaption>" in html  # split known
