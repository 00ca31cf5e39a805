"""Training that loses nothing: a run killed at any point and resumed ends bit-identical.

Every run here uses one intra-op thread (env and ``torch.set_num_threads``), so that
float results are comparable across processes.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import small_config

import modadd_interp as mi
from modadd_interp.checkpoints import read_checkpoint
from modadd_interp.errors import RunLockedError
from modadd_interp.storage import load_tensors
from modadd_interp.train import checkpoint_paths

pytestmark = pytest.mark.adapter

ROOT = Path(__file__).resolve().parents[1]
P, STEPS, EVERY = 17, 150, 10
TASK = mi.ModularTask(p=P, frac_train=0.5, seed=1)
CONFIG = small_config(P)
RECIPE = dict(steps=STEPS, checkpoint_every=EVERY, eval_every=5, lr=3e-3)

TRAIN_SCRIPT = f"""
import sys, torch
torch.set_num_threads(1)
import modadd_interp as mi
from modadd_interp.config import ModelConfig
config = ModelConfig(**{CONFIG.to_dict()!r})
mi.train(mi.ModularTask(**{TASK.to_dict()!r}), sys.argv[1], config=config, progress=False, **{RECIPE!r})
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    return env


def _start(run_dir: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(run_dir)], cwd=ROOT, env=_env(),
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )


def _run_to_end(run_dir: Path, log: Path) -> None:
    proc = _start(run_dir, log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]


def _final(run_dir: Path) -> dict[str, torch.Tensor]:
    step, path = checkpoint_paths(run_dir)[-1]
    assert step == STEPS
    return load_tensors(path)[0]


def _assert_identical(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    assert any(k.startswith("history.train_loss") for k in want)
    differ = [k for k in want if not torch.equal(got[k], want[k])]
    assert not differ, f"tensors differ from the uninterrupted run: {differ}"


@contextlib.contextmanager
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run, trained in a subprocess."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    _run_to_end(run_dir, run_dir.parent / "log.txt")
    return run_dir


def test_reference_run_is_complete(reference):
    final = _final(reference)
    assert final["history.train_loss"].shape == (STEPS,)
    assert final["history.test_step"].tolist() == list(range(5, STEPS + 1, 5))
    assert [s for s, _ in checkpoint_paths(reference)] == list(range(EVERY, STEPS + 1, EVERY))
    assert final["history.train_loss"][-1] < final["history.train_loss"][0]  # it trained


def test_sigkill_then_resume_is_bit_identical(reference, tmp_path):
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    after_checkpoints = rng.randint(1, STEPS // EVERY - 3)  # leave time before the run ends
    jitter = rng.uniform(0.0, 0.05)
    where = f"(kill seed {seed}: after {after_checkpoints} checkpoints + {jitter:.3f}s)"

    run_dir, log = tmp_path / "run", tmp_path / "log.txt"
    proc = _start(run_dir, log)
    try:
        deadline = time.monotonic() + 120
        while len(checkpoint_paths(run_dir)) < after_checkpoints:
            assert proc.poll() is None, f"the run ended before it was killed {where}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no checkpoints appeared {where}"
            time.sleep(0.005)
        time.sleep(jitter)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, where
    steps_written = [s for s, _ in checkpoint_paths(run_dir)]
    assert STEPS not in steps_written, f"the run finished before the kill {where}"
    assert steps_written, where

    _run_to_end(run_dir, tmp_path / "resume_log.txt")
    _assert_identical(_final(run_dir), _final(reference))
    # every checkpoint, before and after the kill, matches the uninterrupted run's
    for (step, path), (ref_step, ref_path) in zip(checkpoint_paths(run_dir), checkpoint_paths(reference), strict=True):
        assert step == ref_step
        _assert_identical(load_tensors(path)[0], load_tensors(ref_path)[0])
    assert not list((run_dir / "checkpoints").glob("*.tmp")), "a half-written temp file was left behind"


def test_corrupt_last_checkpoint_falls_back_with_a_warning(reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    for step, path in checkpoint_paths(run_dir):
        if step > 100:
            path.unlink()  # as if killed soon after step 100 was written
    last = run_dir / "checkpoints" / "step_0000100.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    stale = run_dir / "checkpoints" / ".step_0000110.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")

    with _one_thread(), pytest.warns(UserWarning, match=r"skipping corrupt checkpoint step_0000100.*truncated"):
        mi.train(TASK, run_dir, config=CONFIG, progress=False, **RECIPE)
    _assert_identical(_final(run_dir), _final(reference))
    assert not stale.exists()


def test_flipped_byte_in_last_checkpoint_is_caught_by_its_checksum(reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    last = checkpoint_paths(run_dir)[-1][1]
    data = bytearray(last.read_bytes())
    data[-5] ^= 0x01  # a tensor byte: still valid safetensors, but not what was written
    last.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"skipping corrupt checkpoint step_0000150.*fails its checksum"):
        ckpt = read_checkpoint(run_dir)
    assert ckpt.step == STEPS - EVERY
    assert ckpt.task == TASK


def test_completed_run_is_not_retrained(reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    before = {p.name: p.read_bytes() for _, p in checkpoint_paths(run_dir)}
    mi.train(TASK, run_dir, config=CONFIG, progress=False, **RECIPE)
    assert {p.name: p.read_bytes() for _, p in checkpoint_paths(run_dir)} == before


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(task=mi.ModularTask(p=P, frac_train=0.5, seed=2)), r"different task .*'seed': 1"),
        (dict(task=mi.ModularTask(p=19, frac_train=0.5, seed=1), config=small_config(19)), "different task"),
        (dict(config=small_config(P, d_mlp=64)), r"different config .*'d_mlp': 32"),
        (dict(lr=1e-3), r"recipe .*'lr': 0\.003.*only `steps` may change"),
        (dict(init_seed=5), r"recipe .*only `steps` may change"),
    ],
)
def test_resuming_with_another_task_or_recipe_is_refused(reference, tmp_path, change, match):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    before = sorted(p.name for p in run_dir.rglob("*"))
    kwargs = dict(task=TASK, config=CONFIG, progress=False, **RECIPE)
    kwargs.update(change)
    task = kwargs.pop("task")
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.train(task, run_dir, **kwargs)
    assert sorted(p.name for p in run_dir.rglob("*")) == before


def test_a_second_trainer_on_the_same_run_is_refused(tmp_path):
    import fcntl

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunLockedError, match="another process is training"):
            mi.train(TASK, run_dir, config=CONFIG, progress=False, **RECIPE)
    assert not (run_dir / "checkpoints").exists()
