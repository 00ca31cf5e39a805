"""Sweeps: the spec, the labels, the serial and Ray executors, resuming, failures, the cluster path, the report."""

from __future__ import annotations

import ast
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from browser import external_refs, open_page, requires_chromium
from typer.testing import CliRunner

import modadd_interp as mi
from modadd_interp.cli import app
from modadd_interp.sweep import (
    ACCURACY_THRESHOLD,
    GROK_DELAY_FRACTION,
    SweepExecutorError,
    SweepSpec,
    SweepSpecError,
    label_run,
    make_executor,
    parse_values,
    phase_label,
    read_results,
)
from modadd_interp.sweep.cells import cell_recipe, cell_task

try:
    import ray  # noqa: F401

    HAS_RAY = True
except ImportError:
    HAS_RAY = False
requires_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'modadd_interp[sweep]')")

ROOT = Path(__file__).resolve().parents[1]
#: Tiny models for fast cells.
TINY = ["--d-model", "32", "--d-mlp", "128", "--checkpoint-every", "25"]
#: The command of the issue, with small widths (p 23, 2 x 2 x 2 cells, 300 steps).
COMMAND = ["sweep", "--p", "23", "--weight-decay", "0.5,1", "--frac-train", "0.3,0.6", "--seed", "0,1",
           "--steps", "300", *TINY]


def cli(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``modadd-interp ARGS`` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "modadd_interp.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


def checkpoint_stamps(run_dir: Path) -> dict[str, int]:
    """{checkpoint file: mtime in ns} of a run."""
    return {p.name: p.stat().st_mtime_ns for p in sorted((run_dir / "checkpoints").glob("step_*.safetensors"))}


# ----------------------------------------------------------------------------------------------- the spec


def test_spec_is_the_cross_product_with_readable_unique_names():
    spec = SweepSpec.from_dict({"p": 23, "weight_decay": [0.5, 1], "frac_train": [0.3, 0.6], "seed": [0, 1],
                                "steps": 300, "d_model": 32})
    cells = spec.cells()
    assert spec.swept == ("frac_train", "weight_decay", "seed")
    assert len(cells) == 8 and len({c.name for c in cells}) == 8
    assert {(c.weight_decay, c.frac_train, c.seed) for c in cells} == {
        (w, f, s) for w in (0.5, 1.0) for f in (0.3, 0.6) for s in (0, 1)}
    assert cells[0].name == "p23-add-ft0.3-wd0.5-lr0.001-seed0-ar1-d32-mlp512-L1-s300"
    assert [c.name for c in spec.cells()] == [c.name for c in cells], "names are deterministic"
    # floats that share 6 significant digits still get distinct names
    close = SweepSpec.from_dict({"lr": [0.1234567, 0.1234568]}).cells()
    assert close[0].name != close[1].name


def test_seed_seeds_both_the_split_and_the_init():
    cell = SweepSpec.from_dict({"p": 11, "seed": 7}).cells()[0]
    assert cell_task(cell).seed == 7 and cell_recipe(cell)["init_seed"] == 7


def test_spec_from_toml_and_cli_values(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text('p = 31\nweight_decay = [0.3, 1.0, 3.0]\nseed = [0, 1, 2]\nsteps = 3000\ncheckpoint_every = 50\n')
    spec = SweepSpec.from_toml(path)
    assert spec.axes["weight_decay"] == (0.3, 1.0, 3.0) and spec.settings["checkpoint_every"] == 50
    assert len(spec.with_overrides(frac_train=parse_values("frac_train", "0.3,0.5")).cells()) == 18
    assert parse_values("weight_decay", "0.5,1") == (0.5, 1.0) and parse_values("p", "23") == (23,)


@pytest.mark.parametrize("bad, message", [
    ({"weight_decay": [0.5], "warmup": 3}, "unknown sweep keys ['warmup']"),
    ({"p": "twenty"}, "p needs int values"),
    ({"lr": []}, "lr has an empty list"),
    ({"seed": [0, 0]}, "seed repeats a value"),
    ({"act_fn": ["relu", "gelu"]}, "act_fn is a setting, not an axis"),
    ({"frac_train": float("nan")}, "frac_train needs float values"),
])
def test_malformed_specs_are_clear_errors(bad, message):
    with pytest.raises(SweepSpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SweepSpec.from_dict(bad)
    assert issubclass(SweepSpecError, mi.ModAddError)


def test_bad_cli_values_print_one_error_line(tmp_path):
    done = cli("sweep", "--weight-decay", "0.5,,1", "--out", str(tmp_path / "out"), "--executor", "serial")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --weight-decay '0.5,,1'") and "Traceback" not in done.stderr
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("p = [\n")
    done = cli("sweep", str(bad_toml), "--out", str(tmp_path / "out"), "--executor", "serial")
    assert done.returncode == 2 and "is not valid TOML" in done.stderr


# ---------------------------------------------------------------------------------------------- the labels


def test_phase_labels_follow_liu_et_al():
    steps = 1000
    limit = GROK_DELAY_FRACTION * steps
    assert phase_label(100, 100 + int(limit), steps) == "comprehension"      # a delay of exactly the limit
    assert phase_label(100, 100 + int(limit) + 1, steps) == "grokking"
    assert phase_label(100, None, steps) == "memorization"
    assert phase_label(None, None, steps) == "confusion"
    assert phase_label(None, 500, steps) == "confusion"                      # the training set never fitted
    frame = pd.DataFrame({"step": [50, 100, 150, 200, 950],
                          "train_accuracy": [0.5, ACCURACY_THRESHOLD, 1.0, 1.0, 1.0],
                          "test_accuracy": [0.0, 0.1, 0.2, 0.3, ACCURACY_THRESHOLD + 0.01]})
    assert label_run(frame, steps) == {"label": "grokking", "train_threshold_step": 100,
                                       "test_threshold_step": 950, "grok_delay": 850}
    assert label_run(frame.iloc[:4], steps)["label"] == "memorization"


# --------------------------------------------------------------------------------------- optional Ray, layers


def test_importing_the_package_does_not_import_ray():
    code = "import sys, modadd_interp, modadd_interp.cli, modadd_interp.sweep.report; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_missing_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(SweepExecutorError, match=r"pip install 'modadd_interp\[sweep\]'"):
        make_executor("ray")
    with pytest.raises(SweepExecutorError, match=r"modadd_interp\[sweep\]"):
        mi.sweep({"p": 7, "steps": 10}, tmp_path / "out")
    assert not (tmp_path / "out" / "results.csv").exists()
    with pytest.raises(SweepExecutorError, match="unknown executor 'dask'"):
        make_executor("dask")


def test_core_sweep_modules_import_nothing_above_them():
    """The sweep core sits above progress and below viz/report/cli (docs/sweeps.md)."""
    core = ["spec", "labels", "curves", "cells", "results", "executors", "driver"]
    above = {"viz", "report", "cli", "figures", "commands", "universality"}
    for name in core:
        tree = ast.parse((ROOT / "modadd_interp" / "sweep" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not set((node.module or "").split(".")) & above, f"sweep/{name}.py imports {node.module}"
        for node in tree.body:  # at import time: never ray (executors imports it inside the Ray executor)
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            assert all(n.split(".")[0] != "ray" for n in names), f"sweep/{name}.py imports ray at import time"


# ------------------------------------------------------------------------------------------ serial sweeps


def test_an_invalid_cell_fails_alone_with_its_error_in_its_row(tmp_path):
    spec = {"p": [1, 7], "seed": [0, 1], "steps": 40, "d_model": 16, "d_mlp": 32, "checkpoint_every": 20}
    table = mi.sweep(spec, tmp_path, executor="serial", progress=False)
    assert len(table) == 4 and table.attrs["failed"] == 2
    bad, good = table[table["p"] == 1], table[table["p"] == 7]
    assert (bad["status"] == "failed").all() and bad["label"].isna().all()
    assert bad["error"].str.startswith("TaskMismatchError: p must be an integer >= 2, got 1").all()
    assert (good["status"] == "ok").all() and good["error"].isna().all()
    assert good["label"].isin(["comprehension", "grokking", "memorization", "confusion"]).all()
    csv = pd.read_csv(tmp_path / "results.csv")
    assert len(csv) == 4 and set(csv.loc[csv["p"] == 1, "status"]) == {"failed"}
    # a second run retries the failed cells and skips the finished ones
    again = mi.sweep(spec, tmp_path, executor="serial", progress=False)
    assert again.attrs["skipped"] == 2 and again.attrs["ran"] == 2
    # the report lists the failures; bad report arguments are one error line
    runner = CliRunner()
    done = runner.invoke(app, ["sweep-report", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "2 of 4 cells failed" in (tmp_path / "report" / "index.html").read_text()
    done = runner.invoke(app, ["sweep-report", str(tmp_path), "--x", "width"])
    assert done.exit_code == 2 and "--x 'width' is not an axis" in done.output
    done = runner.invoke(app, ["sweep-report", str(tmp_path / "nothing")])
    assert done.exit_code == 2 and "holds no sweep results" in done.output


def test_records_hold_the_full_analysis_and_phases(tmp_path):
    mi.sweep({"p": 7, "steps": 40, "d_model": 16, "d_mlp": 32, "checkpoint_every": 20}, tmp_path,
             executor="serial", progress=False)
    record = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert record["analysis"]["p"] == 7 and "claims" in record["analysis"] and "verdict" in record["analysis"]
    assert set(record["phases"]) >= {"memorization_end", "circuit_formation_end", "cleanup_end", "grokked", "rule"}
    assert record["final_step"] == 40 and record["threads"] == 1
    assert record["key_frequencies"] == record["analysis"]["key_frequencies"]
    run = mi.load_run(tmp_path / record["run_dir"])
    assert run.steps == (20, 40) and run.task.seed == 0


# -------------------------------------------------------------------------------------------- Ray sweeps


@requires_ray
@requires_chromium
@pytest.mark.slow
def test_the_issue_command_under_local_ray_then_the_report_renders(tmp_path):
    out = tmp_path / "sweep"
    done = cli(*COMMAND, "--out", str(out), "--num-cpus", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "8 cells: 8 ok" in done.stdout
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 8
    assert {"p", "weight_decay", "frac_train", "seed", "status", "label", "test_accuracy",
            "key_frequencies"} <= set(csv.columns)
    assert (csv["status"] == "ok").all() and (csv["p"] == 23).all()
    assert set(zip(csv["weight_decay"], csv["frac_train"], csv["seed"], strict=True)) == {
        (w, f, s) for w in (0.5, 1.0) for f in (0.3, 0.6) for s in (0, 1)}
    assert csv["label"].isin(["comprehension", "grokking", "memorization", "confusion"]).all()
    assert all(isinstance(json.loads(k), list) for k in csv["key_frequencies"])
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["omp_num_threads"], r["threads"]) for r in records} == {("1", 1)}  # Ray's 1 CPU per cell

    # the same cell in this process is bit-identical to the Ray task's (same thread count)
    one = mi.sweep({"p": 23, "weight_decay": 0.5, "frac_train": 0.6, "seed": 1, "steps": 300, "d_model": 32,
                    "d_mlp": 128, "checkpoint_every": 25}, tmp_path / "serial", executor="serial", progress=False)
    ray_row = csv.set_index("cell").loc[one["cell"].iloc[0]]
    for column in ("train_loss", "test_loss", "test_accuracy"):
        assert float(one[column].iloc[0]) == float(ray_row[column])

    # re-running the command trains nothing
    stamps = {cell: checkpoint_stamps(out / "runs" / cell) for cell in csv["cell"]}
    again = cli(*COMMAND, "--out", str(out), "--executor", "serial")
    assert again.returncode == 0 and "ran 0, skipped 8" in again.stdout
    assert {cell: checkpoint_stamps(out / "runs" / cell) for cell in csv["cell"]} == stamps

    report = cli("sweep-report", str(out))
    assert report.returncode == 0, report.stderr[-3000:]
    page = out / "report" / "index.html"
    text = page.read_text()
    assert external_refs(text) == []
    for heading in ("Phase diagram", "Time to grok", "Key frequencies", "Algorithm by attention rate",
                    "Which key frequencies recur across seeds"):
        assert heading in text
    opened = open_page(page, screenshot=tmp_path / "sweep_report.png", timeout_ms=120_000)
    assert opened.console_errors == [] and opened.page_errors == [] and opened.external_requests == []
    assert opened.plotly_divs >= 5 and opened.plotly_drawn == opened.plotly_divs


@requires_ray
@pytest.mark.slow
def test_a_killed_sweep_resumes_without_retraining_finished_cells(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--p", "23", "--seed", "0,1,2,3", "--steps", "300", *TINY, "--out", str(out), "--num-cpus", "2",
            "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "modadd_interp.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "results.jsonl"
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 1):
            time.sleep(0.1)
        assert log.exists(), "no row landed in time"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep, its local Ray and the running cells
        proc.wait()
    finished = [json.loads(line)["cell"] for line in log.read_text().splitlines() if line.strip()]
    assert 1 <= len(finished) < 4
    stamps = {cell: checkpoint_stamps(out / "runs" / cell) for cell in finished}

    done = cli(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"ran {4 - len(finished)}, skipped {len(finished)}" in done.stdout
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 4 and (csv["status"] == "ok").all()
    assert {cell: checkpoint_stamps(out / "runs" / cell) for cell in finished} == stamps


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 120) -> None:
    """Wait until something listens on 127.0.0.1:``port`` (the head's GCS), or fail if ``process`` exits."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, "`ray start --head` exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on port {port} after {seconds} s")


def _descendants(root: int) -> list[int]:
    """Process ids below ``root`` in the process tree (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@requires_ray
@pytest.mark.slow
def test_a_worker_killed_mid_cell_is_retried_and_resumes(tmp_path):
    spec = {"p": 23, "steps": 800, "d_model": 32, "d_mlp": 128, "checkpoint_every": 50}
    run_dir = tmp_path / "runs" / SweepSpec.from_dict(spec).cells()[0].name
    killed: list[int] = []

    def kill_the_worker_after_a_checkpoint() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if list((run_dir / "checkpoints").glob("step_*.safetensors")):
                workers = [pid for pid in _descendants(os.getpid()) if _cmdline(pid).startswith("ray::_ray_cell")]
                for pid in workers:  # our own sweep's worker, found below this test process
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker_after_a_checkpoint, daemon=True)
    killer.start()
    table = mi.sweep(spec, tmp_path, num_cpus=1, max_retries=2, progress=False)
    killer.join(timeout=5)
    assert killed, "the worker was not found"
    row = table.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["resumed_from"] > 0, "the retried task did not resume from the checkpoint"
    assert row["final_step"] == 800


@requires_ray
@pytest.mark.slow
def test_joins_a_cluster_started_with_ray_start(tmp_path):
    """`ray start --head` plus a worker node joining it (loopback), then `sweep --address`; stopped by pid."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    env.pop("OMP_NUM_THREADS", None)  # Ray sets it per worker from the cell's CPUs unless the node inherits one
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    nodes = []
    try:
        nodes.append(subprocess.Popen(
            [ray_bin, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
             f"--temp-dir={ray_tmp}", *common], env=env, start_new_session=True,
            stdout=open(tmp_path / "head.log", "w"), stderr=subprocess.STDOUT))
        _wait_for_port(port, nodes[0])
        nodes.append(subprocess.Popen(  # the worker node: it has every CPU, so the cells must run there
            [ray_bin, "start", f"--address=127.0.0.1:{port}", "--num-cpus=2", *common], env=env,
            start_new_session=True, stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT))
        probe = ("import ray, time; ray.init(address='{a}', log_to_driver=False)\n"
                 "deadline = time.time() + 90\n"
                 "while ray.cluster_resources().get('CPU', 0) < 2 and time.time() < deadline: time.sleep(0.5)\n"
                 "print(ray.cluster_resources().get('CPU', 0))").format(a=f"127.0.0.1:{port}")
        joined = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=180)
        assert joined.stdout.strip().endswith("2.0"), (joined.stdout, joined.stderr[-2000:],
                                                       (tmp_path / "worker.log").read_text()[-2000:])
        done = cli("sweep", "--p", "7,11", "--steps", "40", "--d-model", "16", "--d-mlp", "32",
                   "--checkpoint-every", "20", "--out", str(tmp_path / "out"), "--address", f"127.0.0.1:{port}",
                   "--cpus-per-cell", "2", "--quiet", env=env, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "2 cells: 2 ok" in done.stdout
    finally:
        for node in reversed(nodes):  # worker node first, then the head; each is its own process group
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    table = read_results(tmp_path / "out")
    assert sorted(table["p"]) == [7, 11] and (table["status"] == "ok").all()
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert {(r["omp_num_threads"], r["threads"]) for r in records} == {("2", 2)}  # 2 CPUs per cell


def test_a_second_sweep_on_the_same_directory_is_refused(tmp_path):
    from modadd_interp.sweep.driver import SweepLockedError, _sweep_lock

    with _sweep_lock(tmp_path / "out"):
        with pytest.raises(SweepLockedError, match="another sweep is writing to"):
            with _sweep_lock(tmp_path / "out"):
                pass
    with _sweep_lock(tmp_path / "out"):  # released on exit
        pass
