"""Train a grokking model with the paper's recipe; checkpointed, resumable, deterministic.

A run directory holds ``run.json`` (task, architecture, recipe) and
``checkpoints/step_XXXXXXX.safetensors`` (its layout is :mod:`modadd_interp.formats.run_dir`'s, which
the loaders read too). Each checkpoint holds the canonical weights (``model.*``), the AdamW state
(``optim.*``) and the loss history (``history.*``), and is written atomically with a checksum.
Training resumes from the newest readable checkpoint, to bit-identical results; a corrupt newest
checkpoint falls back to the one before, with a warning. A lock file (``.lock``) keeps two processes
from training the same run at once.

Examples:
    >>> task = ModularTask(p=23, frac_train=0.5)
    >>> run_dir = train(task, "runs/p23", steps=200)  # a minute or more on two cores: not run  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import tl_adapter
from .config import ModelConfig, frozen_biases, paper_init
from .errors import CheckpointError, RecipeError, RunLockedError, TaskMismatchError
from .formats import run_dir
from .formats.run_dir import CKPT_RE, RUN_FORMAT, checkpoint_paths, latest_checkpoint, read_run_info
from .task import ModularTask

__all__ = ["CKPT_RE", "RUN_FORMAT", "Recipe", "checkpoint_paths", "latest_checkpoint", "read_run_info", "train"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The optimisation recipe; the defaults are the paper's (measured to grok p=113 in ~7.5k steps)."""

    steps: int = 10_000
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 10
    init_seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 10

    def __post_init__(self) -> None:
        for name in ("steps", "checkpoint_every", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RecipeError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("warmup_steps", "init_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RecipeError(f"{name} must be a non-negative integer, got {value!r}.")
        if not _is_real(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            raise RecipeError(f"lr must be a positive number, got {self.lr!r}.")
        if not _is_real(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise RecipeError(f"weight_decay must be a non-negative number, got {self.weight_decay!r}.")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2 or not all(_is_real(b) and 0 <= b < 1 for b in betas):
            raise RecipeError(f"betas must be two numbers in [0, 1), got {self.betas!r}.")
        object.__setattr__(self, "betas", betas)

    @classmethod
    def from_kwargs(cls, **fields: object) -> Recipe:
        """``Recipe(**fields)``, naming unknown fields instead of a bare TypeError.

        Examples:
            >>> Recipe.from_kwargs(steps=200).steps
            200
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise RecipeError(f"unknown recipe fields {unknown}; the recipe has {sorted(known)}.")
        return cls(**fields)  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def train(
    task: ModularTask,
    out_dir: str | Path,
    config: ModelConfig | None = None,
    backend: str | None = None,
    progress: bool = True,
    **recipe: object,
) -> Path:
    """Train (or resume) a run in ``out_dir`` and return its path.

    Args:
        task: the task and its split; the model trains on ``task.train_mask``.
        out_dir: the run directory; an existing run there is resumed.
        config: the architecture; default: the paper's for ``task.p`` (:meth:`ModelConfig.paper`; pass
            e.g. ``ModelConfig.paper(p, has_eq=False, attn_rate=0.0, n_layers=2, act_fn="gelu")`` for
            the Clock-and-Pizza family).
        backend: ``"bridge"`` or ``"hooked_transformer"``; default: the installed TL's.
        progress: show a tqdm bar with the train and test loss.
        **recipe: fields of :class:`Recipe` (``steps``, ``lr``, ``weight_decay``, ...).

    Full-batch AdamW on the float64 cross-entropy at the final position, the paper's
    init, and a linear LR warmup; attention and unembed biases stay zero (the paper's
    model has none). Deterministic for a given task, recipe and thread count: a run
    killed at any point and resumed ends bit-identical to an uninterrupted one.

    Raises:
        RecipeError: a recipe field is unknown or out of range.
        TaskMismatchError: ``out_dir`` holds a run with another task, architecture or recipe.
        RunLockedError: another process is training in ``out_dir``.
        ArchitectureError: ``backend`` cannot run ``config`` (an attention rate on TL 3.9's bridge).
        CheckpointError: the run's files are unreadable or inconsistent.
    """
    out_dir = Path(out_dir)
    recipe_obj = Recipe.from_kwargs(**recipe)
    config = config or ModelConfig.paper(task.p)
    if config.p != task.p:
        raise TaskMismatchError(f"the architecture's d_vocab is for p={config.p}, the task has p={task.p}.")
    if not task.split_known:
        raise TaskMismatchError("training needs a split: give the task a split method ('paper' or 'randperm').")
    tl_adapter.check_backend(config, backend)
    run_info = {
        "format": RUN_FORMAT, "task": task.to_dict(), "config": config.to_dict(),
        "recipe": recipe_obj.to_dict(),
    }
    with _run_lock(out_dir):
        _check_or_write_run_info(out_dir, run_info)
        _remove_stale_temp_files(out_dir)
        _train_locked(task, out_dir, config, recipe_obj, run_info, backend, progress)
    return out_dir


def _train_locked(task, out_dir, config, recipe_obj, run_info, backend, progress) -> None:
    resumed = latest_checkpoint(out_dir)
    if resumed is None:
        start, weights = 0, paper_init(config, recipe_obj.init_seed)
        history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "test_step": []}
        optim_state = None
    else:
        start, tensors, info = resumed
        wanted = backend or tl_adapter.default_backend(config)
        if info.get("backend", wanted) != wanted:
            raise CheckpointError(
                f"{out_dir} was trained on the {info['backend']} backend; its optimizer state does "
                f"not fit the {wanted} backend. Resume with backend={info['backend']!r}."
            )
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        history = {k[8:]: v.tolist() for k, v in tensors.items() if k.startswith("history.")}
        optim_state = {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")}
        if len(history.get("train_loss", ())) != start or not optim_state:
            raise CheckpointError(
                f"the checkpoint of step {start} in {out_dir} is inconsistent (its loss history has "
                f"{len(history.get('train_loss', ()))} steps, optimizer state: {bool(optim_state)}); "
                "it was not written by modadd_interp.train. Remove it to resume from the one before."
            )
        if start > recipe_obj.steps:
            warnings.warn(
                f"{out_dir} is already trained to step {start}, past steps={recipe_obj.steps}; "
                "nothing to do (its latest checkpoint is kept).", stacklevel=3,
            )

    model = tl_adapter.build_model(config, weights, backend=backend)
    model.train()
    frozen = set(frozen_biases(config))
    params = {k: p for k, p in sorted(tl_adapter.canonical_parameters(model).items()) if k not in frozen}
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=recipe_obj.lr, weight_decay=recipe_obj.weight_decay,
        betas=recipe_obj.betas,
    )
    if optim_state is not None:
        optimizer.load_state_dict(_optimizer_state_from_tensors(optimizer, list(params), optim_state))

    inputs, labels = config.encode(task.pairs), task.labels
    train_x, train_y = inputs[task.train_mask], labels[task.train_mask]
    test_x, test_y = inputs[task.test_mask], labels[task.test_mask]

    bar = tqdm(range(start, recipe_obj.steps), initial=start, total=recipe_obj.steps,
               disable=not progress, desc=f"train p={task.p}", dynamic_ncols=True)
    for step in bar:
        lr_scale = min(step / recipe_obj.warmup_steps, 1.0) if recipe_obj.warmup_steps else 1.0
        for group in optimizer.param_groups:
            group["lr"] = recipe_obj.lr * lr_scale
        loss = _final_position_loss(model(train_x), train_y, task.p)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["train_loss"].append(loss.item())
        done = step + 1
        if done % recipe_obj.eval_every == 0 or done == recipe_obj.steps:
            with torch.no_grad():
                test_loss = _final_position_loss(model(test_x), test_y, task.p).item() if len(test_y) else float("nan")
            history["test_loss"].append(test_loss)
            history["test_step"].append(done)
            bar.set_postfix(train=f"{loss.item():.3g}", test=f"{test_loss:.3g}")
        if done % recipe_obj.checkpoint_every == 0 or done == recipe_obj.steps:
            _write_checkpoint(out_dir, done, model, optimizer, list(params), history, run_info)
    bar.close()


def _final_position_loss(logits: torch.Tensor, labels: torch.Tensor, p: int) -> torch.Tensor:
    logprobs = logits[:, -1, :p].to(torch.float64).log_softmax(-1)
    return -logprobs.gather(1, labels[:, None]).mean()


def _check_or_write_run_info(out_dir: Path, run_info: dict) -> None:
    if (out_dir / run_dir.RUN_INFO).exists():
        existing = read_run_info(out_dir)
        for key in ("task", "config"):
            if existing[key] != run_info[key]:
                raise TaskMismatchError(
                    f"{out_dir} holds a run with a different {key} ({existing[key]}); "
                    "use a new out_dir to start another run."
                )
        kept = {k: v for k, v in existing["recipe"].items() if k != "steps"}
        asked = {k: v for k, v in run_info["recipe"].items() if k != "steps"}
        if kept != asked:
            raise TaskMismatchError(
                f"{out_dir} was trained with recipe {existing['recipe']}; resuming with a different "
                "recipe would not reproduce it. Use the same recipe (only `steps` may change)."
            )
    run_dir.write_run_info(out_dir, run_info)


def _run_lock(out_dir: Path):
    """Hold an exclusive lock on ``out_dir/.lock``; the OS releases it if the process dies."""
    return run_dir.lock(out_dir, RunLockedError(
        f"another process is training in {out_dir}; wait for it to finish, or use another out_dir."))


def _remove_stale_temp_files(out_dir: Path) -> None:
    """Delete half-written checkpoint temp files left by a killed run (we hold the run lock)."""
    for tmp in run_dir.stale_temp_files(out_dir):
        tmp.unlink(missing_ok=True)


def _write_checkpoint(out_dir, step, model, optimizer, names, history, run_info) -> None:
    tensors = {f"model.{k}": v for k, v in tl_adapter.canonical_weights(model).items()}
    state = optimizer.state_dict()["state"]
    for index, name in enumerate(names):
        for key, value in state.get(index, {}).items():
            tensors[f"optim.{name}.{key}"] = torch.as_tensor(value).clone()
    for key, values in history.items():
        tensors[f"history.{key}"] = torch.tensor(values, dtype=torch.float64)
    info = {"step": step, "task": run_info["task"], "config": run_info["config"],
            "backend": tl_adapter.backend_name(model)}
    run_dir.write_checkpoint(out_dir, step, tensors, info)


def _optimizer_state_from_tensors(optimizer, names, tensors) -> dict:
    state_dict = optimizer.state_dict()
    state = {}
    for index, name in enumerate(names):
        entry = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if entry:
            state[index] = entry
    state_dict["state"] = state
    return state_dict
