"""``analyze`` gives the same JSON across runs (bit for bit) and across thread counts (within tolerance).

Tolerance across thread counts: a float may differ by 1e-6 relative or 1e-9 absolute (a
different number of threads sums in a different order); everything else (key frequencies,
cluster sizes, verdicts) must be identical.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import PAPER_FILES

pytestmark = pytest.mark.slow

REL, ABS = 1e-6, 1e-9


def _analyze(threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "modadd_interp.cli", "analyze", str(PAPER_FILES["no_wd"]), "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _compare(a, b, path="$"):
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=REL, abs_tol=ABS) or (math.isnan(a) and math.isnan(b)), (path, a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _compare(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _compare(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def test_analyze_is_deterministic_across_runs_and_threads():
    first, second, one_thread = _analyze(2), _analyze(2), _analyze(1)
    assert first == second
    _compare(json.loads(first), json.loads(one_thread))
