"""Run every script in examples/ as a user would, and check that it exits 0 and prints what it should.

Each example runs in a subprocess with the test's interpreter (so the bring-your-own-model example
runs again under transformer-lens 3.9 with the `adapter` tests). OMP_NUM_THREADS=1: on a busy
2-core machine torch's default thread pool oversubscribes the CPU and runs several times slower.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modadd_interp.loading import SHIPPED_MODEL, data_path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PAPER_FILE = ROOT / "tests" / "data" / "paper" / "wd_10-1_mod_addition_loss_curve.pth"
PAPER_KEY_FREQS = "[6, 23, 37, 39, 41]"  # measured on PAPER_FILE, see docs/concepts.md

pytestmark = pytest.mark.slow


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name>`` with ``args``; assert exit code 0; return stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{name} {args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_examples_are_all_tested():
    tested = {"analyze_shipped.py", "analyze_paper_checkpoint.py", "train_and_watch.py", "bring_your_own_model.py",
              "clock_vs_pizza.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_analyze_shipped():
    if data_path(SHIPPED_MODEL).exists():
        out = run_example("analyze_shipped.py")
        assert "model: the shipped model" in out
        assert "task: (a + b) mod 113" in out
    else:  # the shipped model is not in this checkout: the same script on a paper checkpoint
        out = run_example("analyze_shipped.py", str(PAPER_FILE))
        assert f"key frequencies: {PAPER_KEY_FREQS} (confidence high)" in out
        assert "circuit confirmed: True" in out
    assert "neuron clusters" in out
    # every applicable claim of a grokked model passes: at least ten, none failing
    assert out.count("[PASS]") >= 10 and "[FAIL]" not in out


def test_analyze_shipped_reports_a_bad_path(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "analyze_shipped.py"), str(tmp_path / "missing.pth")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "error:" in result.stderr and "does not exist" in result.stderr


def test_analyze_paper_checkpoint():
    out = run_example("analyze_paper_checkpoint.py")
    assert f"key frequencies: {PAPER_KEY_FREQS}" in out
    assert "ablation table" in out and "all heads zero-ablated" in out
    assert "circuit confirmed: True" in out


def test_train_and_watch_quick(tmp_path):
    out = run_example("train_and_watch.py", "--quick", "--out", str(tmp_path / "run"))
    assert "training (a + b) mod 23 for 300 steps" in out
    assert "memorization ends at step:" in out
    # 300 steps at p = 23 memorize but do not grok (measured: 73% test accuracy); the line says so with the numbers
    assert "not grokked after 300 steps: test accuracy" in out and "no grokking: final test accuracy" in out
    assert (tmp_path / "run" / "run.json").exists()


@pytest.mark.adapter
def test_bring_your_own_model_quick():
    out = run_example("bring_your_own_model.py", "--quick")
    assert "trained 300 steps" in out
    assert "your model is a " in out
    assert "circuit confirmed:" in out


@pytest.mark.adapter
def test_bring_your_own_model_paper_weights():
    out = run_example("bring_your_own_model.py")
    kind = "HookedTransformer" if int(_tl_version().split(".")[0]) <= 3 else "TransformerBridge"
    assert f"your model is a {kind}" in out
    assert f"key frequencies: {PAPER_KEY_FREQS}" in out
    assert "circuit confirmed: True" in out


def _tl_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("transformer-lens")


def test_clock_vs_pizza_reads_both_fixtures():
    out = run_example("clock_vs_pizza.py")
    assert "model_p99zdpze5l.pt: attention rate 0" in out and "model_l8k1hzciux.pt: attention rate 1" in out
    assert "verdict: pizza at k = [3, 15, 17]" in out and "verdict: clock at k = [13, 16, 21]" in out
