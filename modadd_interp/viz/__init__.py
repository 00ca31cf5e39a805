"""Visual output: one offline HTML page, circuitsvis attention views, static figure export.

Nothing here runs a model or touches the network: figures come from plotly, views
from cached attention patterns, and the JavaScript from the installed packages.

Examples:
    >>> import torch, plotly.express as px
    >>> from modadd_interp.viz import AttentionView, Page
    >>> cached = torch.full((7 * 7, 4, 3, 3), 1 / 3)     # blocks.0.attn.hook_pattern over the grid
    >>> page = (Page("p = 7").section("Attention").attention(AttentionView.from_grid(cached, p=7, a=2, b=3))
    ...         .section("Loss").figure(px.line(y=[2.0, 0.5, 0.01])))
    >>> import tempfile
    >>> out = tempfile.mkdtemp()                          # your folder, e.g. "out/demo"
    >>> page.write(out).relative_to(out)
    PosixPath('index.html')
"""

from .attention_view import AttentionView, circuitsvis_bundle
from .export import export_figure, find_browser
from .page import Page

__all__ = ["AttentionView", "Page", "circuitsvis_bundle", "export_figure", "find_browser"]
