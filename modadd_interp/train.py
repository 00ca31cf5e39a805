"""Train a grokking model with the paper's recipe; checkpointed, resumable, deterministic.

A run directory holds ``run.json`` (task, architecture, recipe) and
``checkpoints/step_XXXXXXX.safetensors``. Each checkpoint holds the canonical
weights (``model.*``), the AdamW state (``optim.*``) and the loss history
(``history.*``), and is written atomically. Training resumes from the newest
readable checkpoint; a corrupt newest checkpoint falls back to the one before,
with a warning.

Example:
    >>> task = ModularTask(p=23, frac_train=0.5)
    >>> run_dir = train(task, "runs/p23", steps=200)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import tl_adapter
from .config import ModelConfig, frozen_biases, paper_init
from .errors import CheckpointError, TaskMismatchError
from .storage import load_tensors, save_tensors
from .task import ModularTask

RUN_FORMAT = "modadd_interp.run/1"
CKPT_RE = re.compile(r"^step_(\d+)\.safetensors$")


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

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def checkpoint_paths(run_dir: Path) -> list[tuple[int, Path]]:
    """``[(step, path)]`` of a run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = CKPT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def read_run_info(run_dir: Path) -> dict:
    """The parsed ``run.json`` of a run directory."""
    path = Path(run_dir) / "run.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is missing or not valid JSON: {e}") from e
    if info.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{path} is not a modadd_interp run (format {info.get('format')!r}).")
    return info


def latest_checkpoint(run_dir: Path) -> tuple[int, dict[str, torch.Tensor], dict] | None:
    """The newest readable checkpoint as ``(step, tensors, info)``, or None when there is none.

    Unreadable checkpoints are skipped with a warning naming them.
    """
    for step, path in reversed(checkpoint_paths(run_dir)):
        try:
            tensors, info = load_tensors(path)
        except CheckpointError as e:
            warnings.warn(f"skipping corrupt checkpoint {path.name}: {e}", stacklevel=2)
            continue
        return step, tensors, info
    return None


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
        config: the architecture; default: the paper's for ``task.p``.
        backend: ``"bridge"`` or ``"hooked_transformer"``; default: the installed TL's.
        progress: show a tqdm bar with the train and test loss.
        **recipe: fields of :class:`Recipe` (``steps``, ``lr``, ``weight_decay``, ...).

    Full-batch AdamW on the float64 cross-entropy at the final position, the paper's
    init, and a linear LR warmup; attention and unembed biases stay zero (the paper's
    model has none). Deterministic for a given task, recipe and thread count.
    """
    out_dir = Path(out_dir)
    recipe_obj = Recipe(**recipe)  # type: ignore[arg-type]
    config = config or ModelConfig.paper(task.p)
    if config.p != task.p:
        raise TaskMismatchError(f"the architecture's d_vocab is for p={config.p}, the task has p={task.p}.")
    run_info = {
        "format": RUN_FORMAT, "task": task.to_dict(), "config": config.to_dict(),
        "recipe": recipe_obj.to_dict(),
    }
    _check_or_write_run_info(out_dir, run_info)

    resumed = latest_checkpoint(out_dir)
    if resumed is None:
        start, weights = 0, paper_init(config, recipe_obj.init_seed)
        history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "test_step": []}
        optim_state = None
    else:
        start, tensors, info = resumed
        wanted = backend or ("hooked_transformer" if tl_adapter.HAS_HOOKED_TRANSFORMER else "bridge")
        if info.get("backend", wanted) != wanted:
            raise CheckpointError(
                f"{out_dir} was trained on the {info['backend']} backend; its optimizer state does "
                f"not fit the {wanted} backend. Resume with backend={info['backend']!r}."
            )
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        history = {k[8:]: v.tolist() for k, v in tensors.items() if k.startswith("history.")}
        optim_state = {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")}

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

    inputs, labels = task.inputs, task.labels
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
    return out_dir


def _final_position_loss(logits: torch.Tensor, labels: torch.Tensor, p: int) -> torch.Tensor:
    logprobs = logits[:, -1, :p].to(torch.float64).log_softmax(-1)
    return -logprobs.gather(1, labels[:, None]).mean()


def _check_or_write_run_info(out_dir: Path, run_info: dict) -> None:
    path = out_dir / "run.json"
    if path.exists():
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
    from .storage import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(run_info, indent=2, sort_keys=True).encode())


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
    save_tensors(out_dir / "checkpoints" / f"step_{step:07d}.safetensors", tensors, info)


def _optimizer_state_from_tensors(optimizer, names, tensors) -> dict:
    state_dict = optimizer.state_dict()
    state = {}
    for index, name in enumerate(names):
        entry = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if entry:
            state[index] = entry
    state_dict["state"] = state
    return state_dict
