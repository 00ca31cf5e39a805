"""The ``sweep`` and ``sweep-report`` commands, registered on the CLI's typer app by :func:`register`.

Examples:
    $ modadd-interp sweep --p 23 --weight-decay 0.5,1 --frac-train 0.3,0.6 --seed 0,1 --steps 300 --out DIR
    $ modadd-interp sweep sweep.toml --out DIR --executor serial
    $ modadd-interp sweep --group S4 --model mlp --d-mlp 128 --seed 0,1,2,3 --steps 2500 --lr 0.01 --out DIR
    $ modadd-interp sweep-report DIR
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    import pandas

from ..errors import ModAddError

AXIS_HELP = "Comma-separated values are a swept axis (e.g. 23,31); overrides the spec file."


def sweep_command(
    spec_file: Optional[Path] = typer.Argument(None, help="TOML spec (axes and settings); flags override it."),
    out: Path = typer.Option(..., "--out", help="Sweep directory: runs/, results.csv, results.jsonl, sweep.json."),
    group: Optional[str] = typer.Option(None, "--group", help="Group(s) whose composition is the task (S4, S5, A5, "
                                        "D59, C113, ...): sets p and op (not with --p/--op)."),
    p: Optional[str] = typer.Option(None, "--p", help=f"Modulus. {AXIS_HELP}"),
    op: Optional[str] = typer.Option(None, "--op", help="Operation(s): add, sub, mul, div."),
    frac_train: Optional[str] = typer.Option(None, "--frac-train", help="Training fraction(s) of the grid."),
    weight_decay: Optional[str] = typer.Option(None, "--weight-decay", help="AdamW weight decay(s)."),
    lr: Optional[str] = typer.Option(None, "--lr", help="Learning rate(s)."),
    steps: Optional[str] = typer.Option(None, "--steps", help="Full-batch training steps."),
    seed: Optional[str] = typer.Option(None, "--seed", help="Seed(s): each seeds both the data split and the init."),
    model: Optional[str] = typer.Option(None, "--model", help="transformer (default) or mlp (a one-hidden-layer "
                                        "MLP: widths --d-embed, --d-mlp)."),
    attn_rate: Optional[str] = typer.Option(None, "--attn-rate", help="Attention rate(s) in [0, 1]."),
    d_model: Optional[str] = typer.Option(None, "--d-model", help="Residual width(s) (default 128, the paper's)."),
    d_embed: Optional[str] = typer.Option(None, "--d-embed", help="An MLP's embedding width(s) (default 256)."),
    d_mlp: Optional[str] = typer.Option(None, "--d-mlp", help="MLP width(s) (default 512)."),
    n_layers: Optional[str] = typer.Option(None, "--n-layers", help="Transformer blocks."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Attention heads (setting; default 4)."),
    act_fn: Optional[str] = typer.Option(None, "--act-fn", help="relu or gelu (setting)."),
    checkpoint_every: Optional[int] = typer.Option(
        None, "--checkpoint-every", help="Steps between checkpoints (setting; default 100): the labels' resolution."),
    llc: Optional[bool] = typer.Option(None, "--llc/--no-llc", help="Add the LLC at every checkpoint (slow)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Linear LR warmup (setting; default 10)."),
    executor: str = typer.Option("ray", "--executor", help="ray (local, or a cluster) or serial (this process)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (default: RAY_ADDRESS)."),
    cpus_per_cell: int = typer.Option(1, "--cpus-per-cell", help="CPUs and torch threads per cell."),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="CPUs of the local Ray (default: all)."),
    max_retries: int = typer.Option(3, "--max-retries", help="Ray retries of a cell whose worker died."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train and analyze a grid of runs (Ray by default); one row per cell in OUT/results.csv.

    Re-running the same command resumes: finished cells are skipped, the rest resume from their last
    checkpoint. A cell that fails is recorded with its error and does not stop the sweep.
    """
    from .driver import sweep
    from .spec import SweepSpec, parse_values

    flags = {"group": group, "p": p, "op": op, "frac_train": frac_train, "weight_decay": weight_decay, "lr": lr,
             "steps": steps, "seed": seed, "model": model, "attn_rate": attn_rate, "d_model": d_model,
             "d_embed": d_embed, "d_mlp": d_mlp, "n_layers": n_layers}
    try:
        spec = SweepSpec.from_toml(spec_file) if spec_file is not None else SweepSpec.from_dict({})
        overrides = {axis: parse_values(axis, text) for axis, text in flags.items() if text is not None}
        spec = spec.with_overrides(**overrides, n_heads=n_heads, act_fn=act_fn, checkpoint_every=checkpoint_every,
                                   llc=llc, warmup_steps=warmup_steps)
        frame = sweep(spec, out, executor=executor, address=address, cpus_per_cell=cpus_per_cell,
                      num_cpus=num_cpus, max_retries=max_retries, progress=not quiet)
    except ModAddError as e:
        _FAIL(e)
    typer.echo(summary(frame, out))


def summary(frame: pandas.DataFrame, out: Path) -> str:
    """Two lines: the cells by status and label, this invocation's wall time, and where the table is."""
    ok = frame[frame["status"] == "ok"]
    labels = ", ".join(f"{n} {label}" for label, n in ok["label"].value_counts().items()) or "none"
    failed = frame[frame["status"] != "ok"]
    lines = [f"{len(frame)} cells: {len(ok)} ok ({labels}), {len(failed)} failed; ran {frame.attrs['ran']}, "
             f"skipped {frame.attrs['skipped']} finished before, in {frame.attrs['wall_seconds']:.1f} s",
             f"results: {Path(out) / 'results.csv'}"]
    for _, row in failed.head(5).iterrows():
        lines.append(f"  failed {row['cell']}: {row['error']}")
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more failed cells (see the error column)")
    return "\n".join(lines)


def sweep_report_command(
    sweep_dir: Path = typer.Argument(..., help="A sweep directory (with results.jsonl)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: SWEEP_DIR/report)."),
    x: Optional[str] = typer.Option(None, "--x", help="Phase diagram's x axis (default: the first swept axis)."),
    y: Optional[str] = typer.Option(None, "--y", help="Phase diagram's y axis (default: the second swept axis)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also export the phase diagram as a PNG (needs Chromium)."),
) -> None:
    """Write an offline HTML page: phase diagram, time to grok, key frequencies, algorithms."""
    from .report import render_sweep_report

    try:
        path = render_sweep_report(sweep_dir, out or Path(sweep_dir) / "report", x=x, y=y, png=png)
    except ModAddError as e:
        _FAIL(e)
    typer.echo(f"sweep report written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _default_fail(error: ModAddError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


_FAIL: Callable[[ModAddError], None] = _default_fail


def register(app: typer.Typer, fail: Callable[[ModAddError], None] | None = None) -> None:
    """Add ``sweep`` and ``sweep-report`` to ``app``; ``fail`` reports a ModAddError (the CLI's ``_fail``)."""
    global _FAIL
    if fail is not None:
        _FAIL = fail
    app.command("sweep")(sweep_command)
    app.command("sweep-report")(sweep_report_command)
