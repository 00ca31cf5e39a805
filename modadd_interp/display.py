"""Rich display of results: one mechanism for every result class, in notebooks and at the prompt.

A result class opts in by subclassing :class:`Displayable` and writing one short method, ``_summary()``,
that returns a :class:`Summary`: a headline (the verdict or the one number that matters), whether it is good
news (``status``), a few detail lines and a compact table. From that one method the class gets:

* ``__repr__``: the class name and the headline, then at most :data:`REPR_DETAIL_LINES` detail lines (the frozen
  dataclasses' default reprs printed whole tensors);
* ``_repr_html_``: the headline first (green for a pass, red for a fail), the details, the table (at most
  :data:`HTML_MAX_ROWS` rows), then where the rest is: ``.to_frame()`` for every row and ``.plot()`` for the
  figure, when the class has them.

Nothing here touches the network: the HTML is plain markup with inline styles (no script, no external URL,
no image), so it renders the same offline, in a notebook, in a docs page or in an e-mail.

The same hook serves results written later (a sweep's, for instance): subclass :class:`Displayable`, write
``_summary()``, and declare the dataclass with ``repr=False`` so that the dataclass machinery keeps the
class's ``__repr__``:

```python
@dataclasses.dataclass(frozen=True, repr=False)
class SweepResult(Displayable):
    frame: pd.DataFrame

    def _summary(self) -> Summary:
        grokked = int(self.frame["grokked"].sum())
        return Summary(f"{grokked} of {len(self.frame)} runs grokked", rows=self.frame)
```

The progress frame is a plain pandas DataFrame; its phases get their own small displayable,
:func:`phases` (``mi.phases(frame)``), whose ``.plot()`` is the progress figure.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> mi.key_frequencies(model, task)
    KeyFrequencies: key frequencies [1, 5, 7, 29] (high confidence)
      the top 4 logit shares stand ...
    >>> s = Summary("all claims pass", status=True, rows=[{"claim": "a", "passed": True}])
    >>> "all claims pass" in render_html(s, "Demo")
    True
"""

from __future__ import annotations

import dataclasses
import html
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

REPR_DETAIL_LINES = 3
"""Detail lines ``__repr__`` prints under the headline."""

REPR_LINE_CHARS = 160
"""A repr line longer than this is cut with an ellipsis."""

HTML_MAX_ROWS = 12
"""Rows of the compact table in ``_repr_html_``; the rest are one ``.to_frame()`` away."""

_COLORS = {True: ("#1a7f37", "#e8f5e9", "PASS"), False: ("#b42318", "#fdecea", "FAIL"),
           None: ("#1d2330", "#f6f7f9", "")}


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a result shows first.

    Attributes:
        headline: one line, the verdict or the headline number (plain text; escaped in HTML).
        status: True (good news: shown green), False (bad news: red) or None (neutral).
        details: a few short lines under the headline (plain text).
        rows: the compact table: a DataFrame, a list of dicts, or a mapping ``{label: value}`` (two columns).
        table_caption: what the table holds, when the rows do not say it.
        max_rows: rows the HTML table shows (the rest are one ``.to_frame()`` away).

    Examples:
        >>> Summary("LLC 26.5 ± 0.3", status=True, rows={"mean": 26.5, "std": 0.3}).frame().shape
        (2, 2)
    """

    headline: str
    status: bool | None = None
    details: Sequence[str] = ()
    rows: Any = None
    table_caption: str = ""
    max_rows: int = HTML_MAX_ROWS

    def frame(self) -> pd.DataFrame | None:
        """The rows as a DataFrame (None when there are none)."""
        rows = self.rows
        if rows is None:
            return None
        if isinstance(rows, pd.DataFrame):
            return rows
        if isinstance(rows, Mapping):
            return pd.DataFrame({"": list(rows.keys()), "value": list(rows.values())})
        return pd.DataFrame(list(rows))


class Displayable:
    """Base class of every displayable result: ``__repr__`` and ``_repr_html_`` from one ``_summary()``.

    Subclasses implement ``_summary()`` (returning a :class:`Summary`); dataclasses declare ``repr=False``.
    """

    def _summary(self) -> Summary:  # pragma: no cover - every subclass writes its own
        raise NotImplementedError(f"{type(self).__name__} must implement _summary()")

    def __repr__(self) -> str:
        return render_text(self._summary(), type(self).__name__)

    def _repr_html_(self) -> str:
        return render_html(self._summary(), type(self).__name__, hints=_hints(self))


def _hints(obj: object) -> list[str]:
    """Where the rest of a result is: ``.to_frame()`` and ``.plot()`` when the object has them."""
    hints = []
    if callable(getattr(obj, "to_frame", None)):
        hints.append("<code>.to_frame()</code> for every row")
    if callable(getattr(obj, "plot", None)):
        hints.append("<code>.plot()</code> for the figure")
    return hints


def _cut(line: str, limit: int = REPR_LINE_CHARS) -> str:
    line = " ".join(str(line).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def render_text(summary: Summary, name: str) -> str:
    """The plain repr: ``name: headline`` and at most :data:`REPR_DETAIL_LINES` indented detail lines.

    Examples:
        >>> print(render_text(Summary("3 of 4 claims pass", status=False, details=["excluded loss 1e-3"]), "Report"))
        Report: 3 of 4 claims pass
          excluded loss 1e-3
    """
    lines = [_cut(f"{name}: {summary.headline}")]
    details = [d for d in summary.details if d]
    lines += ["  " + _cut(d, REPR_LINE_CHARS - 2) for d in details[:REPR_DETAIL_LINES]]
    if len(details) > REPR_DETAIL_LINES:
        lines.append(f"  … {len(details) - REPR_DETAIL_LINES} more line(s) in the HTML view")
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """A table cell as text: floats to 4 significant digits, NaN and None empty, booleans as ✓ / ✗.

    Examples:
        >>> format_value(0.123456), format_value(True), format_value(float("nan")), format_value(12)
        ('0.1235', '✓', '', '12')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        return "" if math.isnan(x) else f"{x:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _table_html(frame: pd.DataFrame, max_rows: int) -> str:
    shown = frame.head(max_rows)
    cell = "padding:2px 10px;border-bottom:1px solid #e3e6eb;text-align:{};white-space:nowrap"
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])
               for c in shown.columns]
    head = "".join(f'<th style="{cell.format("right" if num else "left")};background:#f6f7f9">'
                   f"{html.escape(str(c))}</th>" for c, num in zip(shown.columns, numeric, strict=True))
    body = "".join(
        "<tr>" + "".join(f'<td style="{cell.format("right" if num else "left")}">{html.escape(format_value(v))}</td>'
                         for v, num in zip(row, numeric, strict=True)) + "</tr>"
        for row in shown.itertuples(index=False, name=None))
    more = (f'<div style="color:#5b6475;font-size:0.85em">first {max_rows} of {len(frame)} rows</div>'
            if len(frame) > max_rows else "")
    return (f'<table style="border-collapse:collapse;font-size:0.9em;font-variant-numeric:tabular-nums;'
            f'margin:6px 0"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}')


def render_html(summary: Summary, name: str, hints: Sequence[str] = (), max_rows: int | None = None) -> str:
    """The notebook view: headline first, details, the compact table, then the hints (trusted markup).

    Plain markup with inline styles: no script, no stylesheet link, no URL. ``max_rows`` defaults to the
    summary's.

    Examples:
        >>> page = render_html(Summary("clock at k = [1, 5]", status=True), "Verdict")
        >>> page.count("clock at k = [1, 5]"), "http" in page, "<script" in page
        (1, False, False)
    """
    fg, bg, badge = _COLORS[summary.status]
    badge_html = (f'<span style="background:{fg};color:#fff;border-radius:3px;padding:0 6px;margin-right:8px;'
                  f'font-size:0.8em">{badge}</span>' if badge else "")
    parts = [f'<div class="modadd-interp-result" style="border-left:4px solid {fg};background:{bg};'
             f'padding:6px 12px;margin:4px 0;font-family:system-ui,sans-serif;color:#1d2330">',
             f'<div style="font-weight:600;color:{fg}">{badge_html}{html.escape(summary.headline)}</div>',
             f'<div style="color:#5b6475;font-size:0.8em">{html.escape(name)}</div>']
    parts += [f'<div style="font-size:0.9em">{html.escape(d)}</div>' for d in summary.details if d]
    frame = summary.frame()
    if frame is not None and len(frame):
        if summary.table_caption:
            parts.append(f'<div style="color:#5b6475;font-size:0.85em;margin-top:6px">'
                         f"{html.escape(summary.table_caption)}</div>")
        parts.append(_table_html(frame, summary.max_rows if max_rows is None else max_rows))
    if hints:
        parts.append(f'<div style="color:#5b6475;font-size:0.85em">{" · ".join(hints)}</div>')
    parts.append("</div>")
    return "".join(parts)


# ----------------------------------------------------------------------------------------- the progress phases
PHASE_NAMES = ("memorization", "circuit formation", "cleanup")
PHASE_COLUMNS = ("train_loss", "test_loss", "restricted_loss", "excluded_loss", "gini_we", "gini_wl")


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Phases(Displayable):
    """The phases of a progress frame (``mi.progress_measures(run).attrs["phases"]``), displayable.

    Attributes:
        memorization_end, circuit_formation_end, cleanup_end: phase boundaries (steps), None when absent.
        grokked: whether the run grokked (the rule of :func:`modadd_interp.progress.detect_phases`).
        rule: the rule in words, with the numbers it used.
        checks: ``frame.attrs["phase_checks"]`` (the measures at the boundaries against the paper's story).
        frame: the progress frame itself (``.plot()`` draws it with the phases shaded).
    """

    memorization_end: int | None
    circuit_formation_end: int | None
    cleanup_end: int | None
    grokked: bool
    rule: str
    checks: dict
    frame: pd.DataFrame

    def bounds(self) -> list[tuple[str, int | None, int | None]]:
        """``[(phase, first step, last step)]`` for the three phases (None where a phase is absent)."""
        first = int(self.frame["step"].iloc[0]) if len(self.frame) else None
        return [("memorization", first, self.memorization_end),
                ("circuit formation", self.memorization_end, self.circuit_formation_end),
                ("cleanup", self.circuit_formation_end, self.cleanup_end)]

    def to_frame(self) -> pd.DataFrame:
        """One row per phase: its steps and the measures at its end."""
        at = self.frame.set_index("step") if len(self.frame) else None
        rows = []
        for name, start, end in self.bounds():
            row: dict[str, Any] = {"phase": name, "from step": start, "to step": end}
            for column in PHASE_COLUMNS:
                present = at is not None and end is not None and column in at.columns
                row[f"{column} at end"] = float(at.loc[end, column]) if present else float("nan")
            rows.append(row)
        return pd.DataFrame(rows)

    def plot(self):
        """The progress measures over training, the phases shaded (``viz.figures.progress_figure``)."""
        from .viz.figures import progress_figure

        return progress_figure(self.frame)

    def _summary(self) -> Summary:
        if self.grokked:
            spans = ", ".join(f"{name} to step {end}" for name, _, end in self.bounds() if end is not None)
            headline = f"grokked: {spans}"
        elif self.memorization_end is not None:
            headline = f"no grokking detected (memorized by step {self.memorization_end})"
        else:
            headline = "no grokking detected (never memorized)"
        checks = [f"{name.replace('_', ' ')}: {'yes' if ok else 'NO'}" for name, ok in self.checks.items()
                  if isinstance(ok, bool)]
        return Summary(headline, status=self.grokked, details=[self.rule, *checks],
                       rows=self.to_frame()[["phase", "from step", "to step", "train_loss at end", "test_loss at end",
                                             "restricted_loss at end", "excluded_loss at end"]])


def phases(frame: pd.DataFrame) -> Phases:
    """The phases of a progress frame as a displayable :class:`Phases` (its ``.plot()`` is the progress figure).

    Args:
        frame: what :func:`modadd_interp.progress_measures` returned (a DataFrame whose ``attrs`` hold ``phases``).

    Raises:
        ModAddError: ``frame`` is not a progress frame.

    Examples:
        >>> import modadd_interp as mi
        >>> frame = mi.progress_measures(mi.shipped_run())    # ~10 s: not run by the doctests  # doctest: +SKIP
        >>> mi.phases(frame)                                   # doctest: +SKIP
        Phases: grokked: memorization to step 200, circuit formation to step 4800, cleanup to step 7000
          train accuracy >= 99% at step 200; ...
    """
    from .errors import ModAddError

    found = getattr(frame, "attrs", {}).get("phases") if isinstance(frame, pd.DataFrame) else None
    if not isinstance(found, dict) or "step" not in frame.columns:
        raise ModAddError("phases() takes the DataFrame that progress_measures returned (a 'step' column and "
                          f"attrs['phases']); got {type(frame).__name__}"
                          + (" without them" if isinstance(frame, pd.DataFrame) else "") + ".")
    return Phases(found.get("memorization_end"), found.get("circuit_formation_end"), found.get("cleanup_end"),
                  bool(found.get("grokked")), str(found.get("rule", "")), dict(frame.attrs.get("phase_checks", {})),
                  frame)


__all__ = ["Displayable", "Phases", "Summary", "format_value", "phases", "render_html", "render_text"]
