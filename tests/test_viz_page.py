"""The viz package: an offline page with plotly figures, tables and circuitsvis views, opened in Chromium."""

from __future__ import annotations

import re
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import pytest
import torch
from browser import CHROMIUM, external_refs, is_local, open_page, requires_chromium, serve_directory
from plotly.offline import get_plotlyjs

from modadd_interp.errors import BrowserNotFoundError, ModAddError, VizError
from modadd_interp.viz import AttentionView, Page, export_figure, find_browser
from modadd_interp.viz import attention_view as attention_module

P = 13
NASTY = "</script><b>x</b>"


def causal_patterns(p: int = P, n_heads: int = 4, seed: int = 0) -> torch.Tensor:
    """Synthetic ``hook_pattern`` over the full grid: ``[p*p, n_heads, 3, 3]``, causal rows summing to 1."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(p * p, n_heads, 3, 3, generator=g) * 2
    scores = scores.masked_fill(torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1), float("-inf"))
    return torch.softmax(scores, dim=-1)


def demo_page() -> Page:
    """Two figures, a table and two attention views (one with a token that would break naive inlining)."""
    x = np.arange(P)
    wave = np.cos(2 * np.pi * 3 * x / P)
    heat = px.imshow(np.outer(wave, wave), color_continuous_scale="RdBu", color_continuous_midpoint=0,
                     labels={"x": "b", "y": "a"}, title="cos(w₃a)·cos(w₃b)")
    steps = np.arange(0, 10_000, 100)
    curve = px.line(x=steps, y=np.exp(-steps / 2000) + 1e-4, log_y=True, labels={"x": "step", "y": "test loss"},
                    title="Test loss")
    frame = pd.DataFrame({"freq": [14, 35, 41], "fve": [0.912345, 0.5, float("nan")], "note": ["<i>a</i>", "b", "c"]})
    patterns = causal_patterns()
    odd = AttentionView(patterns[0], ["1", "2", NASTY], title=f"tokens with {NASTY}")
    return (
        Page("Viz test <page>", subtitle="p = 13 & synthetic data")
        .text("An introduction before any section.")
        .section("Figures", "<p>A heatmap and a line.</p>")
        .figure(heat, caption="A heatmap <of> cosines")
        .figure(curve, caption="A line")
        .section("Table")
        .table(frame, caption="Key frequencies")
        .section("Attention")
        .attention(AttentionView.from_grid(patterns, P, 3, 4))
        .attention(odd)
        .section("Figures")  # a repeated title gets its own anchor
        .text("Nothing more.")
    )


# --- the written HTML -------------------------------------------------------------------------------


def test_html_loads_nothing_from_the_network(tmp_path: Path) -> None:
    text = demo_page().write(tmp_path).read_text(encoding="utf-8")
    assert "https://plotly.com" in text  # inside plotly.js: the check below must look at markup only
    assert external_refs(text) == []
    assert external_refs('<p><a href="https://x.org">x</a><img src=//cdn.x/y.png></p>') == [
        "https://x.org", "//cdn.x/y.png"]
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", text.split("</style>")[0])
    assert "mathjax" not in text.split("<script>")[0].lower()


def test_bundles_are_included_once(tmp_path: Path) -> None:
    text = demo_page().write(tmp_path).read_text(encoding="utf-8")
    assert text.count(get_plotlyjs()[:300]) == 1
    assert text.count("var CircuitsVis=") == 1
    assert text.count("Plotly.newPlot(") == 2
    assert text.count("CircuitsVis.render(") == 2
    # a page without figures or views carries neither bundle
    bare = Page("bare").text("hi").render()
    assert "Plotly" not in bare and "CircuitsVis" not in bare and len(bare) < 10_000


def test_user_text_is_escaped(tmp_path: Path) -> None:
    text = demo_page().write(tmp_path).read_text(encoding="utf-8")
    assert "<title>Viz test &lt;page&gt;</title>" in text
    assert "p = 13 &amp; synthetic data" in text
    assert "A heatmap &lt;of&gt; cosines" in text
    assert "<td>&lt;i&gt;a&lt;/i&gt;</td>" in text
    assert NASTY not in text  # neither in the caption nor in the view's props
    assert "\\u003c/script\\u003e\\u003cb\\u003ex\\u003c/b\\u003e" in text


def test_table_of_contents_and_anchors() -> None:
    text = demo_page().render()
    toc = re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', text)
    assert toc == [("figures", "Figures"), ("table", "Table"), ("attention", "Attention"), ("figures-2", "Figures")]
    for anchor, _ in toc:
        assert f'<section id="{anchor}">' in text


def test_table_formats() -> None:
    frame = pd.DataFrame({"loss": [0.123456789, 2.0]}, index=pd.Index([7, 9], name="freq"))
    text = Page("t").table(frame).render()
    assert '<th class="num">freq</th><th class="num">loss</th>' in text
    assert '<td class="num">7</td><td class="num">0.1235</td>' in text
    rows = Page("t").table([[1, "a"], [2, "b"], [3, "c"]], columns=["n", "s"], max_rows=2, caption="Rows").render()
    assert "Rows (first 2 of 3 rows)" in rows and "<td>c</td>" not in rows
    with pytest.raises(VizError, match="columns"):
        Page("t").table([[1, 2]])
    with pytest.raises(VizError, match="row 1 has 1 cells"):
        Page("t").table([[1, 2], [3]], columns=["a", "b"])


def test_figure_height_and_fixed_width() -> None:
    text = Page("t").figure(px.line(y=[1, 2]).update_layout(height=300, width=500)).render()
    assert "height:300px; width:500px;" in text
    default = Page("t").figure(px.line(y=[1, 2])).render()
    assert "height:450px; width:100%;" in default
    with pytest.raises(VizError, match="Figure"):
        Page("t").figure({"data": []})  # type: ignore[arg-type]


# --- attention views ---------------------------------------------------------------------------------


def test_grid_attention_view_picks_the_input() -> None:
    patterns = causal_patterns()
    view = AttentionView.from_grid(patterns, P, a=5, b=11)
    assert view.tokens == ("5", "11", "=")
    assert view.title == "5 + 11 = 3 (mod 13)"
    np.testing.assert_allclose(view.pattern, patterns[5 * P + 11].double().numpy())
    assert view.head_names == ("head 0", "head 1", "head 2", "head 3")


@pytest.mark.parametrize(
    ("pattern", "tokens", "message"),
    [
        (np.ones((2, 3, 4)), ["a", "b", "c"], "shape"),
        (np.ones((2, 3, 3)), ["a", "b"], "2 tokens"),
        (np.full((1, 2, 2), np.nan), ["a", "b"], "NaN"),
        (np.ones((0, 2, 2)), ["a", "b"], "empty"),
    ],
)
def test_attention_view_rejects_bad_input(pattern, tokens, message) -> None:
    with pytest.raises(VizError, match=message):
        AttentionView(pattern, tokens)


def test_grid_attention_view_rejects_bad_input() -> None:
    with pytest.raises(VizError, match="0..12"):
        AttentionView.from_grid(causal_patterns(), P, a=13, b=0)
    with pytest.raises(VizError, match="p\\*p=169"):
        AttentionView.from_grid(causal_patterns(p=5), P, a=1, b=1)
    with pytest.raises(VizError, match="head names"):
        AttentionView(np.ones((2, 1, 1)), ["="], head_names=["only one"])


def test_notebook_repr_does_not_touch_the_network(monkeypatch) -> None:
    def no_network(*_args, **_kwargs):
        raise AssertionError("the notebook repr must not open a URL")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    view = AttentionView.from_grid(causal_patterns(), P, 1, 2)
    fragment = view._repr_html_()
    assert "var CircuitsVis=" in fragment and "CircuitsVis.render(" in fragment
    assert external_refs(fragment) == [] and not re.search(r"<script\b[^>]*\bsrc", fragment)


def test_missing_circuitsvis_internals_give_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    fake = tmp_path / "circuitsvis"
    (fake / "dist" / "cdn").mkdir(parents=True)
    (fake / "dist" / "cdn" / "iife.js").write_text("var CircuitsVis=(()=>({render:()=>1}))();")
    monkeypatch.setattr(attention_module.importlib.resources, "files", lambda _name: fake)
    attention_module.circuitsvis_bundle.cache_clear()
    try:
        with pytest.raises(VizError, match=r"lacks \['AttentionHeads:'\].*circuitsvis>=1.43,<1.44"):
            attention_module.circuitsvis_bundle()
        (fake / "dist" / "cdn" / "iife.js").unlink()
        with pytest.raises(VizError, match="no bundled"):
            attention_module.circuitsvis_bundle()
    finally:
        attention_module.circuitsvis_bundle.cache_clear()


# --- in a real browser -------------------------------------------------------------------------------


@requires_chromium
def test_page_renders_in_chromium_offline(tmp_path: Path) -> None:
    index = demo_page().write(tmp_path / "page")
    shot = tmp_path / "page.png"
    report = open_page(index, screenshot=shot)
    assert report.page_errors == []
    assert report.console_errors == []
    assert report.external_requests == []
    assert report.title == "Viz test <page>"
    assert (report.plotly_divs, report.plotly_drawn) == (2, 2)
    assert (report.circuitsvis_divs, report.circuitsvis_rendered) == (2, 2)
    width, height = png_size(shot)
    assert width == 1280 and height > 1500  # full page, not just the viewport


@requires_chromium
@pytest.mark.slow
def test_page_with_asset_files_served_on_localhost(tmp_path: Path) -> None:
    index = demo_page().write(tmp_path, inline_assets=False)
    assert sorted(p.name for p in (tmp_path / "assets").iterdir()) == ["circuitsvis.js", "plotly.min.js"]
    assert index.stat().st_size < 200_000
    with serve_directory(tmp_path) as base:
        report = open_page(base + "index.html")
    assert any(u.endswith("/assets/plotly.min.js") for u in report.requests)
    assert any(u.endswith("/assets/circuitsvis.js") for u in report.requests)
    assert all(is_local(u) for u in report.requests)
    assert report.page_errors == [] and report.console_errors == []
    assert (report.plotly_drawn, report.circuitsvis_rendered) == (2, 2)


@requires_chromium
@pytest.mark.slow
def test_standalone_view_fragment_renders(tmp_path: Path) -> None:
    view = AttentionView.from_grid(causal_patterns(), P, 7, 8)
    (tmp_path / "view.html").write_text(f"<!DOCTYPE html><meta charset=utf-8><body>{view.to_html()}</body>")
    report = open_page(tmp_path / "view.html")
    assert report.page_errors == [] and report.console_errors == [] and report.external_requests == []
    assert (report.circuitsvis_divs, report.circuitsvis_rendered) == (1, 1)


@requires_chromium
@pytest.mark.slow
def test_browser_helper_sees_broken_pages(tmp_path: Path) -> None:
    """The helper must notice what the tests above assert is absent."""
    (tmp_path / "bad.html").write_text(
        "<!DOCTYPE html><html><head><script src='https://cdn.example.invalid/lib.js'></script></head><body>"
        "<div class='plotly-graph-div' style='height:100px'></div><div class='cv-view'></div>"
        "<script>throw new Error('boom')</script></body></html>"
    )
    report = open_page(tmp_path / "bad.html", timeout_ms=2_000)
    assert report.external_requests == ["https://cdn.example.invalid/lib.js"]
    assert (report.plotly_divs, report.plotly_drawn) == (1, 0)
    assert (report.circuitsvis_divs, report.circuitsvis_rendered) == (1, 0)
    assert any("boom" in e for e in report.page_errors)
    assert report.console_errors  # the blocked script load


# --- static export -----------------------------------------------------------------------------------


@requires_chromium
@pytest.mark.slow
def test_export_png_and_svg(tmp_path: Path) -> None:
    fig = px.imshow(np.eye(5), title="eye").update_layout(width=400, height=300)
    png = export_figure(fig, tmp_path / "deep" / "eye.png", scale=2)
    assert png_size(png) == (800, 600)
    svg = export_figure(fig, tmp_path / "eye.svg", width=320, height=240)
    text = svg.read_text()
    assert text.startswith("<svg") and 'width="320"' in text and 'height="240"' in text
    assert find_browser() == CHROMIUM


def test_export_without_a_browser(tmp_path: Path, monkeypatch) -> None:
    fig = px.line(y=[1, 2, 3])
    with pytest.raises(BrowserNotFoundError, match="apt-get install -y chromium") as info:
        export_figure(fig, tmp_path / "x.png", browser=tmp_path / "no-such-browser")
    assert isinstance(info.value, ModAddError)
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "missing"))
    with pytest.raises(BrowserNotFoundError, match="BROWSER_PATH="):
        find_browser()
    with pytest.warns(UserWarning, match="wrote .*x.html instead"):
        out = export_figure(fig, tmp_path / "x.png", fallback_html=True)
    assert out == tmp_path / "x.html" and "Plotly.newPlot" in out.read_text()
    assert not (tmp_path / "x.png").exists()


def test_export_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(VizError, match="image format"):
        export_figure(px.line(y=[1, 2]), tmp_path / "x.gif")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
