"""Open an HTML page in headless Debian Chromium (via playwright) and report what happened.

Playwright never downloads a browser here: it drives the system Chromium found by
``modadd_interp.viz.find_browser`` (``BROWSER_PATH``, then ``chromium`` on PATH, then
``/usr/bin/chromium``). Every request the page makes is recorded, and any that
would leave the machine (anything but file:, data:, blob:, about: and localhost)
is aborted before it is sent.

Example:
    >>> from browser import open_page, requires_chromium
    >>> report = open_page(tmp_path / "index.html", screenshot=tmp_path / "page.png")  # doctest: +SKIP
    >>> report.external_requests, report.plotly_drawn, report.circuitsvis_rendered  # doctest: +SKIP
    ([], 2, 1)
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from modadd_interp.errors import BrowserNotFoundError
from modadd_interp.viz.export import find_browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome-error"}


def _chromium() -> tuple[Path | None, str]:
    try:
        return find_browser(), ""
    except BrowserNotFoundError as e:
        return None, f"headless Chromium is needed for browser tests (CI installs it): {e}"


CHROMIUM, CHROMIUM_MISSING = _chromium()
#: Mark for tests that open pages; they skip, with the reason, where no Chromium is installed.
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_MISSING)


def is_local(url: str) -> bool:
    """True when ``url`` stays on this machine (file:, data:, blob:, about:, or localhost).

    Example:
        >>> is_local("file:///tmp/x.html"), is_local("http://127.0.0.1:8000/"), is_local("https://cdn.plot.ly/x.js")
        (True, True, False)
    """
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class PageReport:
    """What a page did when opened.

    Attributes:
        url: the address opened.
        title: the document title.
        console_errors: ``console.error`` messages (and failed resource loads).
        page_errors: uncaught exceptions.
        requests: every request URL, in order (data: URLs shortened).
        plotly_divs / plotly_drawn: plotly figure containers, and those with a drawn,
            non-empty plot (a sized ``.main-svg`` and at least one trace).
        circuitsvis_divs / circuitsvis_rendered: ``.cv-view`` containers, and those
            with rendered, non-zero-size content.
        text: the page's rendered text (``document.body.innerText``).
        screenshot: the full-page PNG, when one was asked for.
    """

    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    plotly_divs: int = 0
    plotly_drawn: int = 0
    circuitsvis_divs: int = 0
    circuitsvis_rendered: int = 0
    text: str = ""
    screenshot: Path | None = None

    @property
    def external_requests(self) -> list[str]:
        """Requests that would have left the machine (they were aborted)."""
        return [u for u in self.requests if not is_local(u)]


# Runs in the page: counts figure containers and the ones actually drawn.
_MEASURE_JS = """() => {
  const sized = el => {
    if (!el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const plots = [...document.querySelectorAll('.plotly-graph-div')];
  const drawn = plots.filter(d => d.classList.contains('js-plotly-plot') && sized(d.querySelector('.main-svg'))
      && Array.isArray(d._fullData) && d._fullData.length > 0 && d.querySelector('.trace, .hm, .heatmaplayer image'));
  const views = [...document.querySelectorAll('.cv-view')];
  const rendered = views.filter(v => v.childElementCount > 0 && sized(v.firstElementChild)
      && v.querySelectorAll('*').length >= 5);
  return {plotly_divs: plots.length, plotly_drawn: drawn.length,
          circuitsvis_divs: views.length, circuitsvis_rendered: rendered.length};
}"""

_READY_JS = """(m) => { const r = m(); return r.plotly_drawn === r.plotly_divs
    && r.circuitsvis_rendered === r.circuitsvis_divs; }"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002, ARG002 - silence the per-request log
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on ``http://127.0.0.1:<free port>/`` for the duration of the block.

    Example:
        >>> with serve_directory(tmp_path) as base:  # doctest: +SKIP
        ...     open_page(base + "index.html")
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def open_page(
    target: str | Path,
    *,
    screenshot: Path | None = None,
    viewport: tuple[int, int] = (1280, 900),
    timeout_ms: int = 30_000,
) -> PageReport:
    """Open ``target`` (a file, a folder holding index.html, or a localhost URL) and report on it.

    Waits for the load event, then until every plotly figure is drawn and every
    circuitsvis view rendered (or ``timeout_ms`` passes: the report then shows
    which were not). Requests that would leave the machine are aborted and listed
    in ``report.external_requests``.

    Args:
        target: what to open.
        screenshot: where to save a full-page PNG.
        viewport: window size in CSS pixels.
        timeout_ms: how long to wait for loading and drawing.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        pytest.skip(CHROMIUM_MISSING)
    if isinstance(target, Path) or "://" not in str(target):
        path = Path(target)
        url = (path / "index.html" if path.is_dir() else path).resolve().as_uri()
    else:
        url = str(target)
    report = PageReport(url=url)

    def on_console(msg) -> None:
        if msg.type == "error":
            report.console_errors.append(msg.text)

    def on_request(request) -> None:
        u = request.url
        report.requests.append(u if not u.startswith("data:") else u[:60] + "...")

    def route(r) -> None:
        if is_local(r.request.url):
            r.continue_()
        else:
            r.abort("blockedbyclient")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda err: report.page_errors.append(str(err)))
            page.on("request", on_request)
            page.goto(url, wait_until="load", timeout=timeout_ms)
            measure = f"() => ({_READY_JS})({_MEASURE_JS})"
            try:
                page.wait_for_function(measure, timeout=timeout_ms)
            except PlaywrightTimeout:
                pass  # the counts below show what did not draw
            page.evaluate("document.fonts.ready.then(() => true)")
            report.title = page.title()
            report.text = page.evaluate("document.body.innerText")
            for key, value in page.evaluate(_MEASURE_JS).items():
                setattr(report, key, value)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
                report.screenshot = screenshot
        finally:
            browser.close()
    return report


def external_refs(html_text: str) -> list[str]:
    """``src``/``href`` values in the markup that point off the machine; script bodies are skipped
    (plotly.js holds URL strings that are not page references)."""
    markup = re.sub(r"(<script\b[^>]*>).*?</script\s*>", r"\1</script>", html_text, flags=re.S | re.I)
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", markup, flags=re.I)
    assert refs or "<a" not in markup, "the attribute pattern found nothing where links exist"
    return [r for r in refs if re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", r, flags=re.I)]
