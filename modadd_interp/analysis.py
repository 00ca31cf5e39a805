"""``analyze``: every probe and check on one model, as one JSON-safe dict (the CLI's output)."""

from __future__ import annotations

from .grid import evaluate
from .task import ModularTask


def analyze(model, task: ModularTask) -> dict:
    """Run the analyses on ``model`` and return a JSON-safe dict (keys in DESIGN.md)."""
    result: dict = {"p": task.p, "op": task.op, "task": task.to_dict()}
    result.update(evaluate(model, task))
    return result
