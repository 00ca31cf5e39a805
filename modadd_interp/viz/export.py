"""Static export of plotly figures (PNG, SVG, PDF, JPEG, WebP) through kaleido and a local Chromium.

plotly's ``fig.write_image`` needs kaleido >= 1, which drives a Chrome-family
browser. kaleido (through choreographer) would look for a browser it downloaded
itself first, and by default loads MathJax from a CDN. :func:`export_figure`
instead passes kaleido an explicit browser found by :func:`find_browser`, the
plotly.js shipped inside the plotly package, and ``mathjax=False``: nothing is
downloaded and no request leaves the machine.

Browser search order: the ``browser=`` argument, then the ``BROWSER_PATH``
environment variable (the same variable kaleido/choreographer honour), then
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable``
and ``chrome`` on ``PATH``, then ``/usr/bin/chromium``.

Examples:
    >>> import plotly.graph_objects as go
    >>> export_figure(go.Figure(go.Scatter(y=[1, 3, 2])), "curve.svg")  # needs a Chromium: not run  # doctest: +SKIP
    PosixPath('curve.svg')
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import plotly
import plotly.graph_objects as go

from ..errors import BrowserNotFoundError, VizError

#: Executable names searched on PATH, in order.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: Checked when nothing is found on PATH.
FALLBACK_PATHS = ("/usr/bin/chromium",)
#: File suffixes export_figure understands, mapped to kaleido's format names.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}

_INSTALL_HINT = (
    "Install Chromium (Debian/Ubuntu: `apt-get install -y chromium`), or point BROWSER_PATH "
    "(or browser=) at a Chrome/Chromium executable. For a browser-free picture, "
    "use export_figure(..., fallback_html=True) or matplotlib."
)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_browser(browser: str | os.PathLike[str] | None = None) -> Path:
    """Locate a Chrome-family browser for headless rendering; never downloads one.

    Args:
        browser: an explicit executable path; when given, only it is checked.

    Raises:
        BrowserNotFoundError: no usable executable was found (the message says what to install).

    Examples:
        >>> find_browser()  # this machine's: not run  # doctest: +SKIP
        PosixPath('/usr/bin/chromium')
    """
    if browser is not None:
        path = Path(browser)
        if _is_executable(path):
            return path
        raise BrowserNotFoundError(f"browser={str(browser)!r} is not an executable file. {_INSTALL_HINT}")
    env = os.environ.get("BROWSER_PATH")
    if env:
        if _is_executable(Path(env)):
            return Path(env)
        raise BrowserNotFoundError(f"BROWSER_PATH={env!r} is not an executable file. {_INSTALL_HINT}")
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    for candidate in FALLBACK_PATHS:
        if _is_executable(Path(candidate)):
            return Path(candidate)
    raise BrowserNotFoundError(f"no Chrome/Chromium found (looked for {', '.join(BROWSER_NAMES)}). {_INSTALL_HINT}")


def _local_plotlyjs() -> Path:
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise VizError(f"plotly.js is missing from the installed plotly package ({path}); reinstall plotly.")
    return path


def export_figure(
    fig: go.Figure,
    path: str | os.PathLike[str],
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 1.0,
    browser: str | os.PathLike[str] | None = None,
    fallback_html: bool = False,
    timeout: float = 90.0,
) -> Path:
    """Write ``fig`` as a static image; the format follows the suffix of ``path``.

    Args:
        fig: a plotly figure.
        path: output file ending in .png, .svg, .pdf, .jpg/.jpeg or .webp; parent folders are created.
        width: image width in CSS pixels; default the figure's layout width, else 700.
        height: image height in CSS pixels; default the figure's layout height, else 500.
        scale: pixel-density factor for raster formats (2 gives a sharper PNG).
        browser: the browser executable; default :func:`find_browser`'s search.
        fallback_html: when no browser is found, write a self-contained ``.html``
            next to ``path`` (with a warning) and return its path, instead of raising.
        timeout: seconds allowed for rendering.

    Returns:
        The path written.

    Raises:
        BrowserNotFoundError: no browser and ``fallback_html`` is false.
        VizError: unknown suffix, kaleido missing, or the render failed.

    Examples:
        >>> import plotly.express as px
        >>> export_figure(px.imshow([[0, 1], [1, 0]]), "out/grid.png", scale=2)  # needs Chromium  # doctest: +SKIP
        PosixPath('out/grid.png')
    """
    out = Path(path)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise VizError(f"cannot tell the image format of {str(out)!r}: use one of {', '.join(FORMATS)}.")
    try:
        exe = find_browser(browser)
    except BrowserNotFoundError:
        if not fallback_html:
            raise
        html_path = out.with_suffix(".html")
        html_path.parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(html_path, include_plotlyjs=True, include_mathjax=False, full_html=True)
        warnings.warn(f"no browser for static export; wrote {html_path} instead. {_INSTALL_HINT}", stacklevel=2)
        return html_path
    try:
        import kaleido
    except ImportError as e:
        raise VizError("static export needs kaleido>=1: pip install 'kaleido>=1'.") from e

    opts: dict[str, object] = {"format": fmt, "scale": scale}
    if width or fig.layout.width:
        opts["width"] = width or fig.layout.width
    if height or fig.layout.height:
        opts["height"] = height or fig.layout.height
    kopts = {"path": str(exe), "mathjax": False, "plotlyjs": _local_plotlyjs(), "timeout": timeout}
    try:
        data = kaleido.calc_fig_sync(fig, opts=opts, kopts=kopts)
    except Exception as e:  # kaleido/choreographer raise a variety of runtime errors
        raise VizError(f"rendering {out.name} with {exe} failed: {type(e).__name__}: {e}") from e
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out
