"""A sweep's specification: axes (the cross product of their values) and fixed settings.

A spec names a value list for any of the :data:`AXES`; an axis with more than one value is *swept*,
one with a single value is fixed, and an axis left out takes its :data:`AXIS_DEFAULTS` value (the
``modadd-interp train`` defaults: the paper's recipe and architecture). :data:`SETTINGS` are fixed
for every cell (they are not axes). The cells are the cross product of the axes, in :data:`AXES`
order with the last axis varying fastest.

``seed`` seeds **both** the train/test split (``ModularTask(seed=...)``) and the initialisation
(``train(init_seed=...)``): two seeds are two independent draws of data and weights.

``group`` gives the task as a group's composition instead of ``p`` and ``op`` (``S4``: ``p`` 24, ``op`` ``S4``;
the cell takes both from the group; giving ``p`` or ``op`` too is an error). ``model`` is ``transformer``
(the paper's; widths ``d_model``, ``d_mlp``, heads ``n_heads``, depth ``n_layers``) or ``mlp``
(:meth:`~modadd_interp.config.ModelConfig.mlp`, Chughtai et al.'s one-hidden-layer MLP; widths ``d_embed``
and ``d_mlp``). Each model ignores the other's axes, and sweeping an axis a cell's model does not read
is an error (two cells would be the same run).

A TOML spec is a flat table of these keys; a list is a swept axis::

    p = 31
    weight_decay = [0.3, 1.0, 3.0]
    frac_train = [0.3, 0.5, 0.7]
    seed = [0, 1, 2]
    steps = 3000
    d_model = 64
    d_mlp = 256
    checkpoint_every = 50

Examples:
    >>> spec = SweepSpec.from_dict({"p": 23, "weight_decay": [0.5, 1], "seed": [0, 1]})
    >>> spec.swept, len(spec.cells())
    (('weight_decay', 'seed'), 4)
    >>> spec.cells()[0].name
    'p23-add-ft0.3-wd0.5-lr0.001-seed0-ar1-d128-mlp512-L1-s10000'
    >>> parse_values("weight_decay", "0.5,1")
    (0.5, 1.0)
    >>> mlp = SweepSpec.from_dict({"group": "S4", "model": "mlp", "d_mlp": 128, "seed": [0, 1], "steps": 2500})
    >>> [(c.p, c.op, c.name) for c in mlp.cells()][0]
    (24, 'S4', 'p24-S4-ft0.3-wd1-lr0.001-seed0-MLP-e256-mlp128-s2500')
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ModAddError, TaskMismatchError


class SweepSpecError(ModAddError, ValueError):
    """A sweep specification is malformed: an unknown key, or a value of the wrong type."""


#: The sweepable axes and their value types, in cell-name order.
AXES: dict[str, type] = {
    "group": str, "p": int, "op": str, "frac_train": float, "weight_decay": float, "lr": float, "seed": int,
    "model": str, "attn_rate": float, "d_model": int, "d_embed": int, "d_mlp": int, "n_layers": int, "steps": int,
}
#: The value of an axis the spec leaves out (``modadd-interp train``'s defaults). ``group`` ``""`` means: the task
#: is ``p`` and ``op``; ``d_embed`` is an MLP's embedding width (Chughtai et al.'s 256).
AXIS_DEFAULTS: dict[str, Any] = {
    "group": "", "p": 113, "op": "add", "frac_train": 0.3, "weight_decay": 1.0, "lr": 1e-3, "seed": 0,
    "model": "transformer", "attn_rate": 1.0, "d_model": 128, "d_embed": 256, "d_mlp": 512, "n_layers": 1,
    "steps": 10_000,
}
#: Short prefixes of the axes in a cell name (``op``'s value stands alone; ``group`` and ``model`` are not
#: written: a group's ``p`` and ``op`` name its task, and an MLP cell's name has ``MLP`` in place of the
#: transformer's parts).
NAME_PREFIX: dict[str, str] = {
    "p": "p", "op": "", "frac_train": "ft", "weight_decay": "wd", "lr": "lr", "seed": "seed",
    "attn_rate": "ar", "d_model": "d", "d_embed": "e", "d_mlp": "mlp", "n_layers": "L", "steps": "s",
}
#: The models a cell can train: the paper's transformer, or a one-hidden-layer MLP (:meth:`ModelConfig.mlp`).
MODELS = ("transformer", "mlp")
#: The axes only one kind of model reads (an MLP has no attention and one layer; a transformer no ``d_embed``).
MODEL_AXES: dict[str, tuple[str, ...]] = {"transformer": ("attn_rate", "d_model", "n_layers"), "mlp": ("d_embed",)}
#: Settings fixed for the whole sweep, with their defaults. ``checkpoint_every`` is also the
#: resolution of the phase labels (they are read from the checkpoints); ``llc`` adds the local
#: learning coefficient at every checkpoint (slow; needs the ``slt`` extra); ``warmup_steps`` is the
#: linear learning-rate warmup (the trainer's default, 10).
SETTINGS: dict[str, Any] = {
    "n_heads": 4, "act_fn": "relu", "checkpoint_every": 100, "eval_every": 10, "llc": False, "warmup_steps": 10,
}
_SETTING_TYPES: dict[str, type] = {"n_heads": int, "act_fn": str, "checkpoint_every": int, "eval_every": int,
                                   "llc": bool, "warmup_steps": int}


def _coerce(key: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (ints for int keys, floats for float keys, ...); a clear error otherwise."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
    elif key == "group":
        return _group(value)
    elif key == "model":
        if isinstance(value, str) and value.strip().lower() in MODELS:
            return value.strip().lower()
        raise SweepSpecError(f"model is one of {', '.join(MODELS)}, got {value!r}.")
    elif kind is str:
        if isinstance(value, str) and value.strip():
            return value.strip()
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
    raise SweepSpecError(f"{key} needs {kind.__name__} values, got {value!r}.")


def _group(value: Any) -> str:
    """A group's name as :func:`~modadd_interp.operations.group_task` knows it (``""``/``"none"``: no group)."""
    if not isinstance(value, str):
        raise SweepSpecError(f"group needs a group's name (S4, S5, A5, D59, C113, ...), got {value!r}.")
    name = value.strip()
    if name.lower() in ("", "none"):
        return ""
    from ..errors import GroupError
    from ..operations import group_task

    try:
        group_task(name)
    except (GroupError, TaskMismatchError, ValueError) as error:
        raise SweepSpecError(f"group {name!r}: {error}") from None
    return name


def parse_values(axis: str, text: str) -> tuple:
    """The values of ``axis`` from a comma-separated string (the CLI's form), e.g. ``"0.5,1"``."""
    if axis not in AXES:
        raise SweepSpecError(f"unknown axis {axis!r}; the axes are {', '.join(AXES)}.")
    parts = [part for part in str(text).split(",")]
    if not parts or any(not part.strip() for part in parts):
        raise SweepSpecError(f"--{axis.replace('_', '-')} {text!r}: give comma-separated values, e.g. 0.5,1.")
    return tuple(_coerce(axis, part, AXES[axis]) for part in parts)


def format_value(value: Any) -> str:
    """A value as it appears in cell names and figure labels: ``0.001``, ``1``, ``0.5``, ``1e-05``.

    Floats use Python's shortest round-trip form (integral ones without ``.0``), so distinct values
    always get distinct names.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep: a value for every axis and the sweep's settings.

    Attributes:
        name: the deterministic, readable directory name (``DIR/runs/<name>/``), one part per axis
            in :data:`AXES` order, e.g. ``p23-add-ft0.3-wd0.5-lr0.001-seed0-ar1-d32-mlp128-L1-s300``.
    """

    group: str
    p: int
    op: str
    frac_train: float
    weight_decay: float
    lr: float
    seed: int
    model: str
    attn_rate: float
    d_model: int
    d_embed: int
    d_mlp: int
    n_layers: int
    steps: int
    n_heads: int = SETTINGS["n_heads"]
    act_fn: str = SETTINGS["act_fn"]
    checkpoint_every: int = SETTINGS["checkpoint_every"]
    eval_every: int = SETTINGS["eval_every"]
    llc: bool = SETTINGS["llc"]
    warmup_steps: int = SETTINGS["warmup_steps"]

    @property
    def name(self) -> str:
        """``p24-S4-ft0.7-wd1-lr0.01-seed0-MLP-e256-mlp128-s2500`` for an MLP; a transformer's as before the
        ``model`` axis existed (``...-seed0-ar1-d128-mlp512-L1-s10000``), so older sweeps resume."""
        unread = MODEL_AXES["mlp" if self.model == "transformer" else "transformer"]
        parts = [f"{NAME_PREFIX[axis]}{format_value(getattr(self, axis))}" for axis in AXES
                 if axis not in ("group", "model") and axis not in unread]
        if self.model == "mlp":
            parts.insert(list(AXES).index("model") - 1, "MLP")
        return "-".join(parts).replace("/", "_")

    def axes(self) -> dict[str, Any]:
        """``{axis: value}`` for every axis."""
        return {axis: getattr(self, axis) for axis in AXES}

    def to_dict(self) -> dict[str, Any]:
        """Every field (axes and settings): the cell's identity in the results table."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """The axes' values and the fixed settings of a sweep.

    Attributes:
        axes: ``{axis: (values...)}`` for every axis in :data:`AXES` (a left-out axis holds its default).
        settings: ``{setting: value}`` for every key in :data:`SETTINGS`.
    """

    axes: dict[str, tuple]
    settings: dict[str, Any]

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> SweepSpec:
        """A spec from a mapping of axes (a value or a list of values) and settings (one value each).

        Raises:
            SweepSpecError: an unknown key, an empty or repeated value list, or a value of the wrong type.
        """
        if not isinstance(spec, Mapping):
            raise SweepSpecError(f"a sweep spec is a table of axes and settings, got {type(spec).__name__}.")
        unknown = sorted(set(spec) - set(AXES) - set(SETTINGS))
        if unknown:
            raise SweepSpecError(f"unknown sweep keys {unknown}; the axes are {', '.join(AXES)} and the settings "
                                 f"{', '.join(SETTINGS)}.")
        axes: dict[str, tuple] = {}
        for axis, kind in AXES.items():
            raw = spec.get(axis, AXIS_DEFAULTS[axis])
            values = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            if not values:
                raise SweepSpecError(f"{axis} has an empty list of values.")
            coerced = tuple(_coerce(axis, v, kind) for v in values)
            if len(set(coerced)) != len(coerced):
                raise SweepSpecError(f"{axis} repeats a value: {list(coerced)}.")
            axes[axis] = coerced
        if any(axes["group"]) and (axes["p"] != (AXIS_DEFAULTS["p"],) or axes["op"] != (AXIS_DEFAULTS["op"],)
                                   or "" in axes["group"]):
            raise SweepSpecError(f"give the task by p and op or by group, not both (group {list(axes['group'])}, "
                                 f"p {list(axes['p'])}, op {list(axes['op'])}).")
        settings = dict(SETTINGS)
        for key, kind in _SETTING_TYPES.items():
            if key in spec:
                if isinstance(spec[key], (list, tuple)):
                    raise SweepSpecError(f"{key} is a setting, not an axis: give one value, got {spec[key]!r}.")
                settings[key] = _coerce(key, spec[key], kind)
        return cls(axes=axes, settings=settings)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepSpec:
        """A spec from a TOML file (a flat table; see the module docstring)."""
        path = Path(path)
        try:
            import tomllib
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError:
                raise SweepSpecError("reading a TOML spec on Python 3.10 needs tomli: "
                                     "pip install 'modadd_interp[sweep]'.") from None
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise SweepSpecError(f"cannot read the sweep spec {path}: {e}") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SweepSpecError(f"{path} is not valid TOML: {e}") from e
        return cls.from_dict(data)

    def with_overrides(self, **overrides: Any) -> SweepSpec:
        """This spec with some axes or settings replaced (``None`` values are ignored)."""
        merged: dict[str, Any] = {**self.axes, **self.settings}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return SweepSpec.from_dict(merged)

    @property
    def swept(self) -> tuple[str, ...]:
        """The axes with more than one value, in :data:`AXES` order."""
        return tuple(axis for axis, values in self.axes.items() if len(values) > 1)

    def cells(self) -> list[Cell]:
        """The cross product of the axes: one :class:`Cell` per combination (a group's cells take its ``p`` and
        ``op``).

        Raises:
            SweepSpecError: two cells would be the same run (an axis swept that the cell's model does not read,
                e.g. ``d_model`` for an MLP).
        """
        combos = itertools.product(*(self.axes[axis] for axis in AXES))
        cells = []
        for combo in combos:
            values = dict(zip(AXES, combo, strict=True))
            if values["group"]:
                from ..operations import group_task

                values["p"], values["op"] = group_task(values["group"])
            cells.append(Cell(**values, **self.settings))
        names = [c.name for c in cells]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})[0]
            raise SweepSpecError(f"two cells would be the same run ({twice}): an MLP does not read "
                                 f"{', '.join(MODEL_AXES['transformer'])}, a transformer does not read d_embed; "
                                 "sweep those axes for the model that reads them only.")
        return cells

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: each axis as a list (one value or several) and each setting. A group sweep's task is its
        groups: ``p`` and ``op`` (unread there; each cell takes its group's) are left out, and ``from_dict`` reads
        the dict back to the same spec.

        Examples:
            >>> sorted(set(SweepSpec.from_dict({"group": ["S4", "A4"]}).to_dict()) & {"group", "p", "op"})
            ['group']
        """
        unread = ("p", "op") if any(self.axes["group"]) else ("group",)
        return {**{axis: list(values) for axis, values in self.axes.items() if axis not in unread}, **self.settings}


def as_spec(spec: SweepSpec | Mapping[str, Any] | str | Path) -> SweepSpec:
    """A :class:`SweepSpec` from a spec, a mapping, or the path of a TOML file."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, Path)):
        return SweepSpec.from_toml(spec)
    return SweepSpec.from_dict(spec)
