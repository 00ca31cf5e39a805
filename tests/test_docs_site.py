"""The docs site's tutorial page shows what the notebook computed, drawn offline in headless Chromium.

docs/tutorial.ipynb is stored without outputs; the site build executes it (mkdocs.yml: mkdocs-jupyter
``execute: true``, ``allow_errors: false``; scripts/docs.sh sets up the kernel), so the page holds the verdicts, the
tables and the figures. ``bash scripts/test.sh`` builds the site once, strictly, and points ``MODADD_INTERP_SITE``
at it; run alone, this module builds it into a temporary directory (about a minute on 2 idle cores, the notebook
included). The page is served from localhost and every request that would leave the machine is aborted and listed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from browser import is_local, open_page, requires_chromium, serve_directory

import modadd_interp as mi

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
# plotly.js (4.8 MB) and the circuitsvis bundle (1.3 MB), each inlined once, four figures' data (~70 KB), the
# tables and the theme: 6.9 MB measured
MAX_BYTES = 10_000_000
# the elements whose src/href the browser loads as it parses the page (an <a href> is only a link)
RESOURCE = re.compile(r"""<(?:script|img|iframe|embed|source|audio|video|link)\b[^>]*?\b(?:src|href)\s*=\s*"""
                      r"""["']?([^"'\s>]*)""", re.IGNORECASE)

pytestmark = [pytest.mark.slow, requires_chromium]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site: scripts/test.sh's build (MODADD_INTERP_SITE), else one built here."""
    built = os.environ.get("MODADD_INTERP_SITE")
    if built:
        return Path(built)
    out = tmp_path_factory.mktemp("site")
    subprocess.run(["bash", str(ROOT / "scripts" / "docs.sh"), str(out)], check=True, timeout=3600)
    return out


def test_the_tutorial_page_shows_the_executed_notebook_drawn_offline(site, tmp_path):
    page = site / "tutorial" / "index.html"
    # the site was built from this notebook (include_source copies it next to the page)
    assert (site / "tutorial" / "tutorial.ipynb").read_bytes() == NOTEBOOK.read_bytes()
    html = page.read_text(encoding="utf-8")
    size = len(page.read_bytes())
    print(f"tutorial page: {size} bytes")
    assert size < MAX_BYTES
    # plotly.js inlined exactly once; nothing the page loads comes from off the machine
    assert html.count("* plotly.js v") == 1
    loaded = [url for url in RESOURCE.findall(html) if url]
    assert loaded and not [url for url in loaded if re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)], loaded
    with serve_directory(site) as base:
        report = open_page(base + "tutorial/", screenshot=tmp_path / "tutorial.png", timeout_ms=120_000)
    assert report.external_requests == [] and all(is_local(url) for url in report.requests)
    assert report.console_errors == [] and report.page_errors == [], (report.console_errors, report.page_errors)
    # the outputs are there: the shipped model's verdict, Zhong et al.'s pizza and clock, the phases
    shipped = mi.verify_circuit(*mi.load()).verdict.line  # what the notebook's cell prints, computed here
    assert shipped.startswith("clock at k = [") and "(circuit confirmed)" in shipped
    assert shipped in report.text
    assert re.search(r"model_p99zdpze5l\.pt: pizza at k = \[[\d, ]+\]", report.text)
    assert re.search(r"model_l8k1hzciux\.pt: clock at k = \[[\d, ]+\]", report.text)
    assert "grokked: memorization to step" in report.text  # the phases' headline
    # and drawn: every plotly figure (a sized .main-svg with its traces) and the circuitsvis attention view
    assert report.plotly_divs >= 4 and report.plotly_drawn == report.plotly_divs, report
    assert report.circuitsvis_divs >= 1 and report.circuitsvis_rendered == report.circuitsvis_divs, report
