"""The ``modadd-interp`` command line: train, analyze (and more as they land).

``report`` (and ``analyze --report DIR``) print where the page went and how to open it; ``--open`` opens it in
the user's web browser (Python's :mod:`webbrowser`) when there is one, and says so when there is none: a
missing browser never fails the command.

Examples:
    $ modadd-interp analyze --json
    $ modadd-interp analyze --report report/ --open
    $ modadd-interp train runs/p113 --p 113 --steps 10000
    $ modadd-interp train runs/s5_mlp --group S5 --model mlp --d-embed 128 --d-mlp 128 --lr 0.01 --frac-train 0.6
"""

from __future__ import annotations

import json
import sys
import webbrowser
from pathlib import Path
from typing import Optional

import typer

from .errors import ArchitectureError, ModAddError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Read the grokking circuit out of modular-arithmetic transformers.")


def _fail(error: ModAddError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


OP_HELP = ("Operation add/sub/mul/div, or a group's composition (S5, A5, D59, ...); default: recorded in the "
           "checkpoint, else read from the model's answers.")
GROUP_HELP = "The group the task composes in (S5, A5, D59, C113, U113, C2xS4, ...): another way to give --op."
SPLIT_HELP = "Set the train/test split (default: recorded, else recognised, else unknown: full-grid figures only)."


def _task_options(op: Optional[str], frac_train: Optional[float], seed: Optional[int],
                  split: Optional[str], group: Optional[str] = None) -> dict:
    """The task options for :func:`modadd_interp.load`, the ones given only (``group`` names the op)."""
    return {k: v for k, v in {"op": _op_of(op, group), "frac_train": frac_train, "seed": seed,
                              "split": split}.items() if v is not None}


def _op_of(op: Optional[str], group: Optional[str]) -> Optional[str]:
    """The op ``--op`` or ``--group`` gives (both: an error)."""
    if group is None:
        return op
    from .errors import GroupError, TaskMismatchError
    from .operations import group_task

    if op is not None:
        raise TaskMismatchError(f"give the task by --op or by --group, not both (--op {op}, --group {group}).")
    try:
        return group_task(group)[1]
    except GroupError as error:
        raise TaskMismatchError(f"--group {group}: {error}") from None


@app.command()
def analyze(
    source: Optional[str] = typer.Argument(None, help="Checkpoint file or run directory; default: the shipped model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    p: Optional[int] = typer.Option(None, help="Expected modulus; a mismatch is an error."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Head count of a bare TransformerBridge state dict."),
    op: Optional[str] = typer.Option(None, "--op", help=OP_HELP),
    group: Optional[str] = typer.Option(None, "--group", help=GROUP_HELP),
    frac_train: Optional[float] = typer.Option(None, "--frac-train", help=SPLIT_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the split (with --frac-train/--split)."),
    split: Optional[str] = typer.Option(None, "--split", help="'paper', 'randperm' or 'unknown'."),
    report_dir: Optional[Path] = typer.Option(None, "--report", help="Also write the HTML report into this directory "
                                              "(as `modadd-interp report` would, from this analysis)."),
    open_report: bool = typer.Option(False, "--open", help="Open the report (--report) in your web browser."),
) -> None:
    """Analyze a model: accuracy, losses, key frequencies (key irreps of any group), circuit claims."""
    from .analysis import analyze as run_analysis
    from .causal import verify_circuit
    from .loading import load
    from .probes import grid_cache

    if open_report and report_dir is None:
        _fail(ModAddError("--open opens the HTML report: give --report DIR too."))
    try:
        model, task = load(source, p=p, n_heads=n_heads, **_task_options(op, frac_train, seed, split, group))
        cache = grid_cache(model, task)
        circuit = verify_circuit(model, task, cache=cache)
        result = run_analysis(model, task, cache=cache, circuit=circuit)
    except ModAddError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        typer.echo(format_summary(result))
    if report_dir is None:
        if not as_json:
            typer.echo(f"HTML report: {report_command(source, _op_of(op, group), frac_train, seed, split, n_heads)}")
        return
    from .report import render_report

    try:
        path = render_report(model, task, report_dir, run=_default_series(source), cache=cache, circuit=circuit)
    except ModAddError as e:
        _fail(e)
    announce_report(path, open_report, err=as_json)


def report_command(source: Optional[str], op: Optional[str] = None, frac_train: Optional[float] = None,
                   seed: Optional[int] = None, split: Optional[str] = None, n_heads: Optional[int] = None,
                   out: str = "report") -> str:
    """The ``modadd-interp report`` command line that writes this model's HTML report (shell-quoted).

    Examples:
        >>> report_command("ckpt.pth", op="sub")
        'modadd-interp report ckpt.pth --out report --op sub'
    """
    import shlex

    args = ["modadd-interp", "report"] + ([source] if source is not None else []) + ["--out", out]
    for flag, value in (("--op", op), ("--frac-train", frac_train), ("--seed", seed), ("--split", split),
                        ("--n-heads", n_heads)):
        if value is not None:
            args += [flag, str(value)]
    return " ".join(shlex.quote(a) for a in args)


def announce_report(path: Path, open_it: bool = False, err: bool = False) -> None:
    """Print where the report went and how to open it; with ``open_it``, open it in the user's browser.

    Args:
        path: the report's ``index.html``.
        open_it: try :mod:`webbrowser`; a missing or failing browser is reported, never raised.
        err: print to stderr (keeps ``--json`` output on stdout clean).
    """
    uri = path.resolve().as_uri()
    typer.echo(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB; one offline file)", err=err)
    typer.echo(f"open it in a web browser: {uri}", err=err)
    if open_it:
        typer.echo(open_in_browser(uri), err=err)


def open_in_browser(uri: str) -> str:
    """Open ``uri`` in the user's web browser (:mod:`webbrowser`); return one line saying what happened.

    Never raises: without a browser (a headless server, no ``$BROWSER``) it says so, and the report stays where
    it is.

    Examples:
        >>> open_in_browser("file:///tmp/report/index.html")      # opens a browser: not run  # doctest: +SKIP
        'opened in your web browser (firefox)'
    """
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return ("no web browser found on this machine (Python's webbrowser module found none; set $BROWSER to "
                "choose one): copy the report to a machine with a browser, or open the address above there")
    try:
        opened = browser.open(uri)
    except Exception as e:  # a browser that fails to start must not fail the command
        return f"could not open a web browser ({type(e).__name__}: {e}); open the address above yourself"
    name = getattr(browser, "name", "") or type(browser).__name__
    return (f"opened in your web browser ({name})" if opened
            else f"the web browser ({name}) did not open the page; open the address above yourself")


def format_summary(result: dict) -> str:
    """A short human-readable summary of :func:`analysis.analyze`'s output."""
    clusters = ", ".join(f"{k}: {v}" for k, v in result["neuron_clusters"].items())
    excluded = ", ".join(f"{k}: {v:.3g}" for k, v in result["excluded_loss"].items()) or "-"
    losses = (f"train loss {result['train_loss']:.3g}, test loss {result['test_loss']:.3g}"
              if result["train_loss"] is not None else f"loss {result['loss']:.3g} on the full grid (split unknown)")
    arch, group = result["architecture"], result["group"]
    cyclic = "key_frequency_detection" in result
    detection = result["key_frequency_detection"] if cyclic else result["key_irrep_detection"]
    task = (f"{result['task']['op']} mod p={result['p']}" if cyclic else f"composition in {group['name']}")
    key = (f"key frequencies: {result['key_frequencies'] or 'none'}" if cyclic
           else f"key irreps: {[r['name'] for r in result['key_irreps']] or 'none'}")
    restricted = result["restricted_loss"]
    lines = [
        f"{task} (op {result['op_source']}): accuracy {result['accuracy']:.2%}, {losses}",
        (f"one-hidden-layer MLP ({arch['embed']} embeddings of width {arch['d_embed']}"
         f"{', shared' if arch['shared_embed'] else ''}, {arch['d_mlp']} {arch['act_fn']} neurons"
         f"{', biases' if arch['mlp_bias'] else ''})" if arch.get("arch") == "mlp" else
         f"{result['n_layers']} layer(s), {arch['act_fn']}, attention rate {arch['attn_rate']:g}")
        + f", input {arch['layout']}; group {group['name']} of order {group['order']}, readout {group['readout']}",
        f"{key} ({detection['confidence']} confidence: {detection['reason']})",
        f"neuron clusters: {clusters}",
        (f"restricted test loss {restricted:.3g}; " if restricted is not None else "")
        + f"excluded training loss per key {'frequency' if cyclic else 'irrep'}: {excluded}",
        "claims (* decide the verdict):",
    ]
    for claim in result["claims"]:
        if not claim["applicable"]:
            lines.append(f"  N/A   {claim['name']}  ({claim['detail']})")
            continue
        verdict = "PASS" if claim["passed"] else "FAIL"
        mark = " *" if claim["decides"] else ""
        lines.append(f"  {verdict}{mark}  {claim['name']}  ({claim['metric']:.3g} {claim['comparison']} "
                     f"{claim['threshold']:.3g})")
    if cyclic:
        diag = (f"gradient symmetricity {result['gradient_symmetricity']:.2f}, distance irrelevance "
                f"{result['distance_irrelevance']:.2f}, circularity {result['circularity']:.2f}")
        lines.append(f"Zhong et al.'s diagnostics: {diag}")
    else:
        lines.append(f"not applicable to {group['name']}: {', '.join(result['not_applicable'])}")
    lines.append(f"verdict: {result['verdict']['line']}")
    return "\n".join(lines)


LLC_OPTION = typer.Option(
    None, "--llc", metavar="model|components",
    help="Add the LLC (devinterp SGLD, step size calibrated per checkpoint) and degeneracy measures: 'model' for "
         "the whole model's (~30 s per checkpoint), 'components' for each component's (the embeddings, each "
         "layer's attention and MLP, the unembedding; about 5x the time).")


def _llc_setting(llc: Optional[str]) -> bool | str:
    """``--llc`` as ``progress_measures``/``render_report`` take it: False, True (the whole model) or "components"."""
    if llc not in (None, "model", "components"):
        raise typer.BadParameter(f"--llc takes 'model' or 'components', got {llc!r}", param_hint="--llc")
    return {None: False, "model": True}.get(llc, llc)


@app.command()
def report(
    source: Optional[str] = typer.Argument(None, help="Checkpoint file or run directory; default: the shipped model."),
    out: Path = typer.Option(Path("report"), "--out", help="Output directory (index.html is written there)."),
    run: Optional[str] = typer.Option(None, "--run", help="Checkpoint series for the progress section."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Head count of a bare TransformerBridge state dict."),
    llc: Optional[str] = LLC_OPTION,
    op: Optional[str] = typer.Option(None, "--op", help=OP_HELP),
    group: Optional[str] = typer.Option(None, "--group", help=GROUP_HELP),
    frac_train: Optional[float] = typer.Option(None, "--frac-train", help=SPLIT_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the split (with --frac-train/--split)."),
    split: Optional[str] = typer.Option(None, "--split", help="'paper', 'randperm' or 'unknown'."),
    open_report: bool = typer.Option(False, "--open", help="Open the report in your web browser (when there is one)."),
) -> None:
    """Write a self-contained offline HTML report of the circuit; print where it went and how to open it."""
    from .loading import load
    from .report import render_report

    llc_setting = _llc_setting(llc)
    try:
        model, task = load(source, n_heads=n_heads, **_task_options(op, frac_train, seed, split, group))
        series = run if run is not None else _default_series(source)
        path = render_report(model, task, out, run=series, llc=llc_setting)
    except ModAddError as e:
        _fail(e)
    announce_report(path, open_report)


def _default_series(source: Optional[str]):
    """The checkpoint series a report shows by default: the shipped run for the shipped model, else SOURCE's own."""
    from .loading import shipped_run

    return shipped_run() if source is None else _series_of(source)


def _run_task(series, **options):
    """The task for a run: the one it records, with the given options applied; None (the run's own) if none."""
    if not options:
        return None
    import dataclasses

    from .task import ModularTask

    base = series.task or ModularTask(p=series.config.p)
    split_fields = {k: v for k, v in options.items() if k != "op"}
    if split_fields:
        base = dataclasses.replace(base, **{"frac_train": 0.3, "seed": 0, "split": "paper", **split_fields},
                                   split_source="given")
    if "op" in options:
        base = dataclasses.replace(base, op=options["op"], op_source="given")
    return base


def _series_of(source: str):
    """A run directory or a paper-style series file is its own checkpoint series; anything else has none."""
    from .runs import load_run

    try:
        return load_run(source)
    except ModAddError:
        return None


@app.command()
def progress(
    run: str = typer.Argument(..., help="Run directory, series file, or paper-style series (.pth)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (rows, phases, key frequencies)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write the measures to this CSV file."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Head count of bare TransformerBridge state dicts."),
    llc: Optional[str] = LLC_OPTION,
    op: Optional[str] = typer.Option(None, "--op", help=OP_HELP),
    group: Optional[str] = typer.Option(None, "--group", help=GROUP_HELP),
    frac_train: Optional[float] = typer.Option(None, "--frac-train", help=SPLIT_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the split (with --frac-train/--split)."),
    split: Optional[str] = typer.Option(None, "--split", help="'paper', 'randperm' or 'unknown'."),
) -> None:
    """Progress measures over a run's checkpoints, and its phases."""
    from .progress import progress_measures
    from .runs import load_run

    llc_setting = _llc_setting(llc)
    try:
        series = load_run(run, n_heads=n_heads)
        task = _run_task(series, **_task_options(op, frac_train, seed, split, group))
        frame = progress_measures(series, task=task, progress=not as_json,
                                  llc=llc_setting)
    except ModAddError as e:
        _fail(e)
    if csv is not None:
        frame.to_csv(csv, index=False)
    if as_json:
        payload = {key: frame.attrs[key] for key in ("key_freqs", "key_freqs_source", "phases", "phase_checks",
                                                     "llc_components") if key in frame.attrs}
        payload["rows"] = frame.to_dict(orient="records")
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(frame.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        typer.echo(f"key frequencies {frame.attrs['key_freqs']} ({frame.attrs['key_freqs_source']})")
        typer.echo(f"phases: {json.dumps(frame.attrs['phases'])}")


@app.command()
def train(
    out_dir: Path = typer.Argument(..., help="Run directory (resumed if it exists)."),
    p: int = typer.Option(113, help="Modulus (with --group: the group's order, set for you)."),
    op: str = typer.Option("add", help="Operation: add, sub, mul or div (mul/div need a prime p)."),
    group: Optional[str] = typer.Option(None, "--group", help="Train on a group's composition instead (S5, A5, D59, "
                                        "C113, ...): sets p and the op."),
    frac_train: float = typer.Option(0.3, help="Training fraction of the grid."),
    data_seed: int = typer.Option(0, help="Seed of the train/test split."),
    split: str = typer.Option("paper", help="'paper' (random.shuffle) or 'randperm' (TL demo)."),
    steps: int = typer.Option(10_000, help="Total full-batch steps."),
    init_seed: int = typer.Option(0, help="Seed of the paper initialisation."),
    checkpoint_every: int = typer.Option(100, help="Steps between checkpoints."),
    lr: float = typer.Option(1e-3),
    weight_decay: float = typer.Option(1.0),
    warmup_steps: int = typer.Option(10, "--warmup-steps", help="Linear learning-rate warmup steps (0: none)."),
    model: str = typer.Option("transformer", "--model", help="transformer (the paper's) or mlp (a one-hidden-layer "
                              "MLP, Chughtai et al.'s: widths --d-embed and --d-mlp)."),
    n_layers: Optional[int] = typer.Option(None, "--n-layers", help="Transformer blocks (default 1)."),
    d_model: Optional[int] = typer.Option(None, "--d-model", help="Transformer residual width (default 128)."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Transformer attention heads (default 4)."),
    d_embed: Optional[int] = typer.Option(None, "--d-embed", help="MLP embedding width per operand (default 256)."),
    d_mlp: Optional[int] = typer.Option(None, "--d-mlp", help="Hidden width (default 512 for a transformer, 128 "
                                        "for an MLP)."),
    act_fn: str = typer.Option("relu", "--act-fn", help="relu or gelu."),
    attn_rate: Optional[float] = typer.Option(None, "--attn-rate", help="Attention rate alpha in [0, 1] (0: constant "
                                              "attention; default 1)."),
    eq: bool = typer.Option(True, "--eq/--no-eq", help="Inputs (a, b, '=') or (a, b) (the Clock-and-Pizza layout)."),
    bidirectional: bool = typer.Option(False, "--bidirectional", help="No causal attention mask."),
) -> None:
    """Train with the paper's recipe (any architecture of the family, or an MLP); checkpointed and resumable."""
    from .task import ModularTask
    from .train import train as run_train

    try:
        if group is not None:
            from .operations import group_task

            if op != "add":
                raise ModAddError(f"give the task by --op or by --group, not both (--op {op}, --group {group}).")
            p, op = group_task(group)
        task = ModularTask(p=p, op=op, frac_train=frac_train, seed=data_seed, split=split)
        widths = {"n_layers": n_layers, "d_model": d_model, "n_heads": n_heads, "d_embed": d_embed, "d_mlp": d_mlp,
                  "attn_rate": attn_rate}
        config = train_config(p, model, act_fn=act_fn, eq=eq, bidirectional=bidirectional, **widths)
        run_train(task, out_dir, config=config, steps=steps, init_seed=init_seed, lr=lr,
                  weight_decay=weight_decay, warmup_steps=warmup_steps, checkpoint_every=checkpoint_every)
    except ModAddError as e:
        _fail(e)
    typer.echo(f"run written to {out_dir}")


#: The ``train`` options each model reads (the other's are an error when given).
MODEL_OPTIONS = {"transformer": ("n_layers", "d_model", "n_heads", "attn_rate"), "mlp": ("d_embed",)}


def train_config(p: int, model: str = "transformer", *, act_fn: str = "relu", eq: bool = True,
                 bidirectional: bool = False, **widths: Optional[float]):
    """The :class:`~modadd_interp.config.ModelConfig` ``modadd-interp train`` builds: the paper's transformer, or
    Chughtai et al.'s MLP; ``widths`` left None take the model's defaults.

    Raises:
        ArchitectureError: an unknown model, or an option the model does not read (e.g. ``--d-model`` for an MLP).

    Examples:
        >>> train_config(24, "mlp", d_embed=32, d_mlp=64).d_model      # two operand slots of 32, 64 neurons
        128
        >>> train_config(24, "mlp", d_model=64)
        Traceback (most recent call last):
        ...
        modadd_interp.errors.ArchitectureError: --model mlp does not read --d-model (it takes --d-embed and --d-mlp).
    """
    from .config import ModelConfig

    if model not in MODEL_OPTIONS:
        raise ArchitectureError(f"--model is transformer or mlp, got {model!r}.")
    other = "mlp" if model == "transformer" else "transformer"
    given = [name for name in MODEL_OPTIONS[other] if widths.get(name) is not None]
    if model == "mlp" and not (eq and not bidirectional):
        given += ["--no-eq" if not eq else "--bidirectional"]
    if given:
        flags = ", ".join(g if g.startswith("--") else "--" + g.replace("_", "-") for g in given)
        reads = "--d-embed and --d-mlp" if model == "mlp" else "--d-model, --n-heads, --n-layers and --d-mlp"
        raise ArchitectureError(f"--model {model} does not read {flags} (it takes {reads}).")
    def width(name: str, default: float) -> float:
        return default if widths.get(name) is None else widths[name]

    if model == "mlp":
        return ModelConfig.mlp(p, d_embed=int(width("d_embed", 256)), d_mlp=int(width("d_mlp", 128)), act_fn=act_fn)
    d_model, n_heads = int(width("d_model", 128)), int(width("n_heads", 4))
    if n_heads < 1 or d_model % n_heads:
        raise ArchitectureError(f"--n-heads {n_heads} does not divide --d-model {d_model}.")
    return ModelConfig.paper(p, has_eq=eq, n_layers=int(width("n_layers", 1)), d_model=d_model, n_heads=n_heads,
                             d_head=d_model // n_heads, d_mlp=int(width("d_mlp", 512)), act_fn=act_fn,
                             attn_rate=float(width("attn_rate", 1.0)),
                             attention_dir="bidirectional" if bidirectional else "causal")


from .sweep import commands as _sweep_commands  # noqa: E402 - the sweep and sweep-report commands

_sweep_commands.register(app, _fail)


def main() -> None:
    """Console-script entry point; warnings print as one line each."""
    import warnings

    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
    app(prog_name="modadd-interp")


if __name__ == "__main__":
    sys.exit(main())
