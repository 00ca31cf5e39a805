"""The format registry: formats tried in a documented order, the first whose ``sniff`` says yes reads.

A format is anything with a ``NAME`` (str) and two functions, usually a module of this package:

* ``sniff(src: Source) -> bool``: cheap: does this path or object look like mine? It looks at a file's name, its
  first bytes, a directory's entries, or the keys and ranks of a loaded object (``src.content``), and never raises;
* ``read(src: Source, options: ReadOptions) -> Checkpoint | Series``: read it, or raise a
  :class:`~modadd_interp.errors.ModAddError` naming the problem. A format that holds a series (a run directory, a
  paper-style ``state_dicts``) returns a :class:`Series` when ``options.series`` is set, else its final checkpoint.

Readers inside a format that meet a nested object (the state dict under a paper file's ``"model"``) call
:func:`read` again on it, so every layout is recognised everywhere by one sniffing path. :func:`finish` turns a
read into what the public readers return: the caller's ``config=`` and ``n_heads=`` applied and checked, and one
notice per assumption (:func:`~modadd_interp.formats.checkpoint.assumption_notice`).

Adding a format is adding a module with ``NAME``, ``sniff`` and ``read`` and registering it
(:func:`register`: in this package, one line in ``BUILTIN_ORDER``; outside it, ``register(module, before=...)``).

Examples:
    >>> [fmt.NAME for fmt in formats()][:4]
    ['run_directory', 'modadd_interp', 'chughtai', 'clock_and_pizza_mlp']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ..config import ModelConfig, check_weights
from ..errors import ArchitectureError, CheckpointError
from .checkpoint import ASSUMABLE, Assumed, Checkpoint, Series, assumption_notice
from .layout import fill_missing_biases, tensor_dict
from .source import Source


@runtime_checkable
class Format(Protocol):
    """What the registry needs of a format (a module or any object with these three names)."""

    NAME: str

    def sniff(self, src: Source) -> bool:  # pragma: no cover - a protocol
        """Cheap: does ``src`` look like this format? Never raises."""
        ...

    def read(self, src: Source, options: ReadOptions) -> Checkpoint | Series:  # pragma: no cover - a protocol
        """Read ``src``; a :class:`Series` only when ``options.series`` and the format holds one."""
        ...


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """What the caller of a reader asked for.

    Attributes:
        n_heads: the head count the caller gives (a bridge state dict does not record it); None: read or assumed.
        config: :class:`~modadd_interp.config.ModelConfig` fields the caller gives for what a format does not record
            (``{"attn_rate": 0.0, "attention_dir": "bidirectional"}``); a field that contradicts what the source
            records or its weights show raises.
        series: the caller wants every checkpoint of a series (``load_run``), not the final one (``load``).
    """

    n_heads: int | None = None
    config: Mapping[str, object] = dataclasses.field(default_factory=dict)
    series: bool = False


_REGISTRY: list[Format] = []


def formats() -> tuple[Format, ...]:
    """The registered formats, in the order they are tried."""
    return tuple(_REGISTRY)


def register(fmt: Format | None = None, *, before: str | None = None, after: str | None = None):
    """Add a format to the registry; usable as a decorator (``@register(before="paper")``) or a call.

    Args:
        fmt: a module or object with ``NAME``, ``sniff`` and ``read`` (see the module docstring).
        before, after: the ``NAME`` of a registered format to try it just before or after; default: last, after
            every built-in format (it then sees only what none of them claims).

    Raises:
        ValueError: ``fmt`` lacks ``NAME``/``sniff``/``read``, its name is taken, or ``before``/``after`` names no
            registered format.
    """
    if fmt is None:
        return lambda f: register(f, before=before, after=after)
    if not isinstance(fmt, Format) or not isinstance(getattr(fmt, "NAME", None), str):
        raise ValueError(f"{fmt!r} is not a format: it needs a NAME (str), sniff(src) and read(src, options).")
    if fmt.NAME in {f.NAME for f in _REGISTRY}:
        raise ValueError(f"a format named {fmt.NAME!r} is already registered; unregister it first.")
    if before is not None and after is not None:
        raise ValueError("give before= or after=, not both.")
    anchor = before or after
    if anchor is None:
        _REGISTRY.append(fmt)
        return fmt
    names = [f.NAME for f in _REGISTRY]
    if anchor not in names:
        raise ValueError(f"no registered format is named {anchor!r}; the formats are {names}.")
    _REGISTRY.insert(names.index(anchor) + (after is not None), fmt)
    return fmt


def unregister(name: str) -> None:
    """Remove the format named ``name`` (a no-op when there is none)."""
    _REGISTRY[:] = [f for f in _REGISTRY if f.NAME != name]


# ------------------------------------------------------------------ reading
def read(src: Source, options: ReadOptions) -> Checkpoint | Series:
    """The first format (in :func:`formats` order) whose ``sniff`` claims ``src`` reads it; raw: no ``config=``
    applied, no notice yet (:func:`finish`).

    Raises:
        CheckpointError: the path does not exist, or nothing claims ``src`` (the reason the file could not be
            loaded when it could not, else what it holds).
    """
    if src.path is not None and not src.path.exists():
        raise CheckpointError(f"{src.path} does not exist; check the path.")
    if src.path is not None and not (src.is_dir or src.is_file):
        raise CheckpointError(f"{src.path} is not a regular file; pass a checkpoint file or a run directory.")
    for fmt in _REGISTRY:
        if fmt.sniff(src):
            return fmt.read(src, options)
    raise _unclaimed(src)


def read_final(src: Source, options: ReadOptions) -> Checkpoint:
    """:func:`read`'s final checkpoint (the last of a series)."""
    result = read(src, dataclasses.replace(options, series=False))
    return result.checkpoints[-1] if isinstance(result, Series) else result


def read_series(src: Source, options: ReadOptions) -> Series:
    """:func:`read` as a series.

    Raises:
        CheckpointError: ``src`` holds a single model.
    """
    result = read(src, dataclasses.replace(options, series=True))
    if isinstance(result, Checkpoint):
        raise CheckpointError(
            f"{src.origin} holds a single model, not a series; progress measures need several checkpoints "
            "(a run directory, a series file, a paper-style 'state_dicts' file, or a list of (step, state dict) "
            "pairs)."
        )
    return result


def _unclaimed(src: Source) -> Exception:
    if src.is_dir:
        return CheckpointError(
            f"{src.path} is a directory but not a modadd_interp run (no run.json) nor a directory any registered "
            f"format reads ({', '.join(f.NAME for f in _REGISTRY)}); pass a checkpoint file or a directory written "
            "by modadd_interp.train."
        )
    obj = src.load()
    if not isinstance(obj, Mapping):
        return CheckpointError(
            f"{src.origin} holds a {type(obj).__name__}, not a state dict; save model.state_dict() instead."
        )
    state = tensor_dict(obj)  # a clear error for values that are not tensors, LayerNorm, ...
    keys = sorted(state)
    shown = str(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
    return CheckpointError(
        f"unrecognised state dict: expected the keys of a modadd_interp, paper, HookedTransformer or "
        f"TransformerBridge model (e.g. 'blocks.0.attn.W_O'), or of a registered format "
        f"({', '.join(f.NAME for f in _REGISTRY)}); got {shown}."
    )


# ------------------------------------------------------------------ finishing
def check_options(n_heads: object, config: object) -> ReadOptions:
    """The options of a public reader, validated; ``config`` may be a ``ModelConfig`` or a mapping of its fields.

    Raises:
        ArchitectureError: ``n_heads`` is not a positive integer, or ``config`` is not a mapping of
            :class:`~modadd_interp.config.ModelConfig` fields.
    """
    if config is None:
        config = {}
    elif isinstance(config, ModelConfig):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise ArchitectureError(f"config must be a ModelConfig or a dict of its fields, got a {type(config).__name__}.")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(str(k) for k in config if k not in known)
    if unknown:
        raise ArchitectureError(f"config has unknown fields {unknown}; ModelConfig's fields are {sorted(known)}.")
    if n_heads is None:
        n_heads = config.get("n_heads")
    if n_heads is not None and (isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1):
        raise ArchitectureError(f"n_heads must be a positive integer, got {n_heads!r}.")
    return ReadOptions(n_heads=n_heads, config=dict(config))


def finish(result: Checkpoint | Series, src: Source, options: ReadOptions) -> Checkpoint | Series:
    """A raw read made ready for the caller: ``options.config`` applied where the format assumed and checked
    against what it read, ``options.n_heads`` checked, the weights validated against the config
    (:func:`~modadd_interp.config.check_weights`; missing biases are zeros), and each assumption turned into one
    note.

    Raises:
        ArchitectureError: ``n_heads`` or a ``config`` field contradicts the source, or the result is not a
            valid architecture.
        InvalidWeightsError: a format's weights do not fit its config (keys, shapes, dtype, NaN/inf).
    """
    if isinstance(result, Series):
        return dataclasses.replace(result, checkpoints=tuple(_finish_one(c, src, options) for c in result.checkpoints))
    return _finish_one(result, src, options)


def notes_of(result: Checkpoint | Series) -> list[str]:
    """Every note of a finished read, once each (a series' checkpoints share theirs)."""
    checkpoints = result.checkpoints if isinstance(result, Series) else (result,)
    return list(dict.fromkeys(note for c in checkpoints for note in c.notes))


def _finish_one(ckpt: Checkpoint, src: Source, options: ReadOptions) -> Checkpoint:
    if options.n_heads is not None and options.n_heads != ckpt.config.n_heads:
        raise ArchitectureError(
            f"the file has {ckpt.config.n_heads} heads, but n_heads={options.n_heads} was given; drop n_heads or "
            f"pass {ckpt.config.n_heads}."
        )
    assumed = set(ckpt.assumed.fields) if ckpt.assumed else set()
    if options.n_heads is not None:
        assumed.discard("n_heads")
    changes = {}
    for field, value in options.config.items():
        current = getattr(ckpt.config, field)
        if field in assumed and field in ASSUMABLE:
            changes[field] = value
            assumed.discard(field)
        elif value != current:
            raise ArchitectureError(
                f"config gives {field}={value!r}, but {src.name} records (or its weights show) {field}={current!r}; "
                f"drop {field} from config."
            )
    config = ckpt.config
    if changes:
        try:
            config = dataclasses.replace(config, **changes)
        except ArchitectureError as e:
            raise ArchitectureError(f"config does not fit {src.name}: {e}") from e
        if ckpt.task is not None and ckpt.task.p != config.p:
            raise ArchitectureError(
                f"config makes {src.name} a model for p={config.p}, but it records a task with p={ckpt.task.p}."
            )
    weights = check_weights(config, fill_missing_biases(config, ckpt.weights))  # every format's, checked here too
    out = dataclasses.replace(ckpt, config=config, weights=weights, assumed=None)
    if assumed:
        remaining = Assumed(tuple(f for f in ASSUMABLE if f in assumed), ckpt.assumed.reason, ckpt.assumed.remedy)
        out = dataclasses.replace(out, assumed=remaining)
        out = dataclasses.replace(out, notes=(*out.notes, assumption_notice(src.name, out)))
    return out
