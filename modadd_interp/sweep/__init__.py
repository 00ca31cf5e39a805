"""Sweeps: a grid of runs, each trained, analyzed and labelled into one row of a results table.

Layers inside this package (one direction, as in the rest of the package):

* the core (:mod:`.spec`, :mod:`.labels`, :mod:`.cells`, :mod:`.results`, :mod:`.executors`,
  :mod:`.driver`) sits above ``progress`` and imports nothing from ``viz``, ``report`` or ``cli``;
* :mod:`.figures` and :mod:`.report` are the sweep's part of the viz/report layer (the HTML page);
* :mod:`.commands` is its part of the CLI (``modadd-interp sweep`` and ``sweep-report``).

Importing this package never imports Ray; only the Ray executor does, when it runs.

Examples:
    >>> import modadd_interp as mi
    >>> table = mi.sweep("sweep.toml", "sweeps/wd_frac")      # trains a model per cell: not run  # doctest: +SKIP
    >>> table.groupby(["weight_decay", "frac_train"])["label"].agg(lambda s: s.mode()[0])   # doctest: +SKIP
"""

from .cells import ROW_COLUMNS, run_cell
from .driver import SweepLockedError, sweep
from .executors import RayExecutor, SerialExecutor, SweepExecutorError, make_executor
from .labels import ACCURACY_THRESHOLD, GROK_DELAY_FRACTION, LABELS, label_run, phase_label
from .results import Results, read_results
from .spec import AXES, AXIS_DEFAULTS, SETTINGS, Cell, SweepSpec, SweepSpecError, parse_values

__all__ = [
    "ACCURACY_THRESHOLD",
    "AXES",
    "AXIS_DEFAULTS",
    "Cell",
    "GROK_DELAY_FRACTION",
    "LABELS",
    "ROW_COLUMNS",
    "RayExecutor",
    "Results",
    "SETTINGS",
    "SerialExecutor",
    "SweepExecutorError",
    "SweepLockedError",
    "SweepSpec",
    "SweepSpecError",
    "label_run",
    "make_executor",
    "parse_values",
    "phase_label",
    "read_results",
    "run_cell",
    "sweep",
]
