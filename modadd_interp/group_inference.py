"""The group of a model whose checkpoint does not record its task, read from its answers.

When no modular operation explains a model's answers (:func:`modadd_interp.inference.infer_op`), its argmax answers
over every ``(x, y)`` are read as a table ``T[x, y]``. If ``T`` is a group's Cayley table (an identity, inverses,
associativity: :func:`modadd_interp.groups.check_table`), the group is identified up to isomorphism among the
built-in families (:func:`modadd_interp.groups.identify`), kept in the model's own token order
(:func:`modadd_interp.groups.relabelled`), and the task is its composition; otherwise the error says which axiom
fails and how to give the task.

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp import tl_adapter
    >>> model, task = mi.load()                     # the shipped model's answers: (a + b) mod 113
    >>> found = infer_group(model, tl_adapter.model_config(model))
    >>> found.op
    'C113'
    >>> print(found.notice("model.pt"))
    model.pt does not record its operation; its answers form a group's Cayley table: order 113, abelian, ...:
    isomorphic to C113 (explicit isomorphism found from generator of order 113, checked on all 12769 products).
    Pass --op / op= to set it.
"""

from __future__ import annotations

import dataclasses

import torch

from .config import ModelConfig
from .errors import GroupError, TaskMismatchError
from .groups import identify, relabelled
from .operations import operation_of_group

CHUNK = 8192


@dataclasses.dataclass(frozen=True)
class GroupInference:
    """What a model's answers say about its group.

    Attributes:
        op: the op name of the group's composition in the model's token order (None when the answers form no
            group table).
        sentence: what was inferred and how (or why no group).
    """

    op: str | None
    sentence: str

    def notice(self, origin: str) -> str:
        """One line for the user."""
        return (f"{origin} does not record its operation; its answers form a group's Cayley table: {self.sentence}. "
                "Pass --op / op= to set it.")


@torch.no_grad()
def answer_table(model, config: ModelConfig) -> torch.Tensor:
    """``[n, n]`` int64 the model's argmax answer to every pair of tokens ``(x, y)``, ``n = config.p``."""
    n = config.p
    x = torch.arange(n).repeat_interleave(n)
    y = torch.arange(n).repeat(n)
    pairs = torch.stack([x, y], 1)
    out = [model(config.encode(pairs[s : s + CHUNK]))[:, -1, :n].argmax(-1) for s in range(0, n * n, CHUNK)]
    return torch.cat(out).reshape(n, n)


def infer_group(model, config: ModelConfig) -> GroupInference:
    """The group whose table the model's answers are (module docstring)."""
    table = answer_table(model, config)
    try:
        found = identify(table)
    except GroupError as error:
        return GroupInference(None, f"its answers form no group table ({error})")
    group = found.group if found.family is None else relabelled(found.group, found.isomorphism)
    return GroupInference(operation_of_group(group), found.sentence)


def require_group(result: GroupInference, modular: str) -> str:
    """``result.op``, or one clear error saying what the answers are not (``modular``: the modular operations'
    agreement, :func:`modadd_interp.inference.require_op`'s message)."""
    if result.op is None:
        raise TaskMismatchError(f"{modular} Nor are they a group's composition: {result.sentence}.")
    return result.op
