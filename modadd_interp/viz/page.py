"""One self-contained, offline HTML page: sections, plotly figures, tables, circuitsvis views.

The page loads nothing from the network. plotly.js (from the installed plotly
package) and the circuitsvis bundle (from the installed circuitsvis package) are
each included once, and only when the page uses them: inline by default, so that
``index.html`` is a single file to share, or as files under ``assets/`` with
``write(..., inline_assets=False)``. MathJax is never loaded; fonts are the
system's own.

Examples:
    >>> import plotly.express as px
    >>> page = Page("Grokking report")
    >>> page.section("Embedding", "<p>Norms per frequency.</p>").figure(px.line(y=[3, 1, 2]), caption="W_E norms")
    Page('Grokking report', 1 sections, 1 figures, 0 tables, 0 views)
    >>> import tempfile
    >>> out = tempfile.mkdtemp()                          # your folder, e.g. "out/report"
    >>> page.write(out).relative_to(out)
    PosixPath('index.html')
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ..errors import VizError
from .attention_view import AttentionView, circuitsvis_bundle, script_safe

#: Height in px of a figure whose layout sets none.
DEFAULT_FIGURE_HEIGHT = 450
#: Rows a table shows before it is cut (the caption then says so).
DEFAULT_MAX_ROWS = 200

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #dde1e8; --bg: #ffffff; --panel: #f6f7f9; --accent: #2f5bd3; }
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.55;
       font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 28px 40px 18px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0; font-size: 1.7rem; }
header p { margin: 6px 0 0; color: var(--muted); }
.layout { display: grid; grid-template-columns: 230px minmax(0, 1fr); gap: 40px;
          max-width: 1320px; margin: 0 auto; padding: 24px 40px 60px; }
nav.toc { position: sticky; top: 16px; align-self: start; max-height: calc(100vh - 32px); overflow-y: auto;
          font-size: 0.92rem; }
nav.toc h2 { font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted);
             margin: 0 0 8px; }
nav.toc ol { list-style: none; margin: 0; padding: 0; }
nav.toc li { margin: 0; }
nav.toc a { display: block; padding: 4px 10px; border-left: 2px solid var(--line); color: var(--fg);
            text-decoration: none; }
nav.toc a:hover { border-left-color: var(--accent); color: var(--accent); }
.layout.no-toc { grid-template-columns: minmax(0, 1fr); max-width: 1100px; }
main { min-width: 0; }
section { margin: 0 0 44px; }
section > h2 { font-size: 1.35rem; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em;
       background: var(--panel); padding: 1px 4px; border-radius: 3px; }
figure { margin: 18px 0 26px; }
figcaption { color: var(--muted); font-size: 0.92rem; margin-top: 6px; }
.plot { max-width: 100%; overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
        background: #fff; }
.table-wrap { display: inline-block; max-width: 100%; overflow-x: auto; border: 1px solid var(--line);
              border-radius: 6px; }
table { border-collapse: collapse; min-width: 320px; font-size: 0.92rem; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--panel); font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; }
tbody tr:nth-child(even) { background: #fbfbfc; }
tbody tr:last-child td { border-bottom: none; }
.cv-view { border: 1px solid var(--line); border-radius: 6px; padding: 12px; min-height: 120px; overflow-x: auto; }
footer { color: var(--muted); font-size: 0.85rem; text-align: center; padding: 18px;
         border-top: 1px solid var(--line); }
@media (max-width: 900px) {
  .layout { grid-template-columns: 1fr; padding: 16px; }
  nav.toc { position: static; max-height: none; }
  header { padding: 20px 16px 14px; }
}
"""


@dataclass
class _Section:
    title: str
    anchor: str
    blocks: list[str] = field(default_factory=list)


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    anchor, n = base, 2
    while anchor in taken:
        anchor, n = f"{base}-{n}", n + 1
    taken.add(anchor)
    return anchor


def _format_cell(value: Any, float_format: str) -> tuple[str, bool]:
    """The escaped text of one table cell and whether it is numeric."""
    if isinstance(value, bool) or value is None:
        return html.escape(str(value) if value is not None else ""), False
    if isinstance(value, numbers.Integral):
        return str(int(value)), True
    if isinstance(value, numbers.Real):
        x = float(value)
        return ("" if math.isnan(x) else html.escape(float_format.format(x))), True
    return html.escape(str(value)), False


def _table_rows(data: Any, columns: Sequence[str] | None) -> tuple[list[str], list[list[Any]]]:
    """Column names and row values from a DataFrame, a list of mappings or a list of sequences."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame, without importing pandas
        frame = data
        index_name = frame.index.name
        keep_index = index_name is not None or not _is_default_index(frame.index)
        cols = [str(c) for c in frame.columns]
        rows = [list(r) for r in frame.itertuples(index=keep_index, name=None)]
        if keep_index:
            cols = [str(index_name or "")] + cols
        return cols, rows
    rows_in = list(data)
    if rows_in and all(isinstance(r, Mapping) for r in rows_in):
        cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows_in for k in r))
        return [str(c) for c in cols], [[r.get(c) for c in cols] for r in rows_in]
    if columns is None:
        raise VizError("a table from a list of rows needs columns=[...] (or pass a DataFrame or a list of dicts).")
    rows = [list(r) for r in rows_in]
    bad = [i for i, r in enumerate(rows) if len(r) != len(columns)]
    if bad:
        n = len(rows[bad[0]])
        raise VizError(f"row {bad[0]} has {n} cells, expected {len(columns)} (columns={list(columns)}).")
    return [str(c) for c in columns], rows


def _is_default_index(index: Any) -> bool:
    return type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1


class Page:
    """A builder for one offline HTML page; every adder returns the page, so calls chain.

    Content goes into the most recent :meth:`section`; content added before any
    section forms an untitled introduction. Sections are listed in a table of
    contents. All text arguments are escaped, except those named ``*_html`` and
    :meth:`html`, which are inserted as given (trusted markup only).

    Args:
        title: the page title and heading.
        subtitle: a line under the heading, e.g. the model and task.

    Examples:
        >>> page = Page("Report", subtitle="p = 113").section("Summary").text("All claims pass.")
        >>> "<h1>Report</h1>" in page.render()
        True
    """

    def __init__(self, title: str, *, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._intro = _Section("", "")
        self._sections: list[_Section] = []
        self._anchors: set[str] = set()
        self._n_figures = 0
        self._n_tables = 0
        self._n_views = 0

    def __repr__(self) -> str:
        return (
            f"Page({self.title!r}, {len(self._sections)} sections, {self._n_figures} figures, "
            f"{self._n_tables} tables, {self._n_views} views)"
        )

    @property
    def _current(self) -> _Section:
        return self._sections[-1] if self._sections else self._intro

    def section(self, title: str, text_html: str = "") -> Page:
        """Start a new section (an ``<h2>`` and a table-of-contents entry).

        Args:
            title: plain text, escaped.
            text_html: optional trusted HTML placed under the heading.
        """
        self._sections.append(_Section(title, _slug(title, self._anchors)))
        if text_html:
            self._current.blocks.append(text_html)
        return self

    def text(self, text: str) -> Page:
        """Add a paragraph of plain text (escaped; blank lines start new paragraphs).

        Examples:
            >>> "&lt;b&gt;" in Page("t").text("<b> is not bold").render()
            True
        """
        for para in re.split(r"\n\s*\n", text.strip()):
            self._current.blocks.append(f"<p>{html.escape(para)}</p>")
        return self

    def html(self, raw: str) -> Page:
        """Add trusted HTML as given (no escaping)."""
        self._current.blocks.append(raw)
        return self

    def figure(self, fig: go.Figure, caption: str = "", *, height: int | None = None) -> Page:
        """Add a plotly figure, drawn by the page's single copy of plotly.js.

        Args:
            fig: the figure; its layout width/height are kept when set.
            caption: plain text under the figure.
            height: px; default the layout height, else ``DEFAULT_FIGURE_HEIGHT``.
        """
        if not isinstance(fig, go.Figure):
            raise VizError(f"figure() takes a plotly.graph_objects.Figure, got {type(fig).__name__}.")
        self._n_figures += 1
        div_id = f"fig_{self._n_figures}"  # "_" never occurs in section anchors
        h = int(height or fig.layout.height or DEFAULT_FIGURE_HEIGHT)
        w = f"{int(fig.layout.width)}px" if fig.layout.width else "100%"
        body = pio.to_html(
            fig,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            div_id=div_id,
            default_width=w,
            default_height=f"{h}px",
            config={"responsive": True, "displaylogo": False, "showSendToCloud": False},
        )
        fit = "" if w == "100%" else ' style="width:fit-content"'
        self._current.blocks.append(_figure_html(f'<div class="plot"{fit}>{body}</div>', caption))
        return self

    def table(
        self,
        data: Any,
        caption: str = "",
        *,
        columns: Sequence[str] | None = None,
        float_format: str = "{:.4g}",
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> Page:
        """Add a table from a pandas DataFrame, a list of dicts, or a list of rows with ``columns``.

        Cells are escaped; numbers are right-aligned and floats formatted with
        ``float_format``; NaN shows as an empty cell. A non-default DataFrame index
        becomes the first column. Rows beyond ``max_rows`` are cut, and the caption says so.

        Examples:
            >>> page = Page("t").table([{"freq": 14, "fve": 0.9123}], caption="Key frequencies")
            >>> '<td class="num">0.9123</td>' in page.render()
            True
        """
        cols, rows = _table_rows(data, columns)
        n_rows = len(rows)
        if n_rows > max_rows:
            rows = rows[:max_rows]
            caption = f"{caption} (first {max_rows} of {n_rows} rows)".strip()
        cells = [[_format_cell(v, float_format) for v in r] for r in rows]
        numeric = [bool(cells) and all(c[i][1] or c[i][0] == "" for c in cells) for i in range(len(cols))]
        th = ['<th class="num">' if num else "<th>" for num in numeric]
        head = "".join(f"{th[i]}{html.escape(c)}</th>" for i, c in enumerate(cols))
        body = "\n".join(
            "<tr>" + "".join(f'<td class="num">{t}</td>' if num else f"<td>{t}</td>" for t, num in row) + "</tr>"
            for row in cells
        )
        self._n_tables += 1
        table = (
            f'<div class="table-wrap"><table>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table></div>"
        )
        self._current.blocks.append(_figure_html(table, caption))
        return self

    def attention(self, view: AttentionView, caption: str = "") -> Page:
        """Add a circuitsvis attention view (see :mod:`modadd_interp.viz.attention_view`).

        The caption defaults to the view's title.
        """
        if not isinstance(view, AttentionView):
            raise VizError(f"attention() takes an AttentionView, got {type(view).__name__}.")
        self._n_views += 1
        div_id = f"attention_{self._n_views}"
        block = f'<div id="{div_id}" class="cv-view"></div>\n<script>{view.render_script(div_id)}</script>'
        self._current.blocks.append(_figure_html(block, caption or view.title))
        return self

    def _assets(self) -> dict[str, str]:
        """The JavaScript this page needs: file name -> source."""
        assets = {}
        if self._n_figures:
            assets["plotly.min.js"] = script_safe(get_plotlyjs())
        if self._n_views:
            assets["circuitsvis.js"] = circuitsvis_bundle()
        return assets

    def render(self, *, inline_assets: bool = True) -> str:
        """The page's HTML. With ``inline_assets=False`` it expects ``assets/*.js`` beside it (see :meth:`write`)."""
        assets = self._assets()
        if inline_assets:
            scripts = "\n".join(f"<script>{js}</script>" for js in assets.values())
        else:
            scripts = "\n".join(f'<script src="assets/{name}"></script>' for name in assets)
        if "plotly.min.js" in assets:  # plotly.js reads this when it loads: never look for MathJax
            scripts = '<script>window.PlotlyConfig = {MathJaxConfig: "local"};</script>\n' + scripts
        toc = "\n".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in self._sections)
        parts = []
        if self._intro.blocks:
            parts.append('<section class="intro">\n' + "\n".join(self._intro.blocks) + "\n</section>")
        for s in self._sections:
            blocks = "\n".join(s.blocks)
            parts.append(f'<section id="{s.anchor}">\n<h2>{html.escape(s.title)}</h2>\n{blocks}\n</section>')
        subtitle = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        nav = f'<nav class="toc"><h2>Contents</h2><ol>\n{toc}\n</ol></nav>' if self._sections else ""
        layout = "layout" if self._sections else "layout no-toc"
        body = "\n".join(parts)
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="modadd_interp {_package_version()}">
<title>{html.escape(self.title)}</title>
<style>{CSS}</style>
{scripts}
</head>
<body>
<header><h1>{html.escape(self.title)}</h1>{subtitle}</header>
<div class="{layout}">
{nav}
<main>
{body}
</main>
</div>
<footer>Made with modadd_interp {_package_version()}. This page is self-contained and works offline.</footer>
</body>
</html>
"""

    def write(self, out_dir: str | Path, *, inline_assets: bool = True) -> Path:
        """Write ``out_dir/index.html`` (and ``out_dir/assets/*.js`` when not inlined); return the HTML path.

        Examples:
            >>> import tempfile
            >>> Page("t").text("hello").write(tempfile.mkdtemp()).name
            'index.html'
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if not inline_assets:
            (out / "assets").mkdir(exist_ok=True)
            for name, js in self._assets().items():
                (out / "assets" / name).write_text(js, encoding="utf-8")
        index = out / "index.html"
        index.write_text(self.render(inline_assets=inline_assets), encoding="utf-8")
        return index


def _figure_html(inner: str, caption: str) -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>\n{inner}\n{cap}\n</figure>"


def _package_version() -> str:
    try:
        return version("modadd_interp")
    except PackageNotFoundError:
        return "(development)"
