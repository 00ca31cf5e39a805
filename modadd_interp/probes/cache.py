"""One hooked forward pass over the full grid, shared by every probe.

Examples:
    >>> cache = grid_cache(model, task)               # doctest: +SKIP
    >>> cache.neurons.shape, cache.attention.shape    # [p*p, d_mlp], [p*p, n_heads, n_ctx]
"""

from __future__ import annotations

import dataclasses

import torch

from .. import tl_adapter
from ..config import ModelConfig
from ..grid import check_compatible, grid_run
from ..task import ModularTask

NEURONS = "blocks.0.mlp.hook_post"
PATTERN = "blocks.0.attn.hook_pattern"


@dataclasses.dataclass(frozen=True)
class GridCache:
    """What the probes read from a model: weights plus one grid forward pass.

    Attributes:
        task: the task the grid belongs to.
        config: the model's architecture.
        weights: canonical float32 weight copies (see :mod:`modadd_interp.config`).
        logits: ``[p*p, d_vocab_out]`` float32 final-position logits.
        neurons: ``[p*p, d_mlp]`` float32 MLP activations (post-ReLU) at the final position.
        attention: ``[p*p, n_heads, n_ctx]`` attention pattern of the final ('=') query.
    """

    task: ModularTask
    config: ModelConfig
    weights: dict[str, torch.Tensor]
    logits: torch.Tensor
    neurons: torch.Tensor
    attention: torch.Tensor

    @property
    def answer_logits(self) -> torch.Tensor:
        """``[p*p, p]`` float64 logits over the answers ('=' output dropped)."""
        return self.task.final_logits(self.logits)

    @property
    def neuron_grid(self) -> torch.Tensor:
        """``[p, p, d_mlp]`` neuron activations indexed ``[a, b, neuron]``."""
        p = self.task.p
        return self.neurons.reshape(p, p, -1)

    @property
    def w_logit(self) -> torch.Tensor:
        """``W_L = W_out @ W_U`` restricted to the answers: ``[d_mlp, p]`` float64."""
        w = self.weights
        return (w["blocks.0.mlp.W_out"].double() @ w["unembed.W_U"].double())[:, : self.task.p]


    def logits_with_neurons(self, neurons: torch.Tensor) -> torch.Tensor:
        """``[p*p, p]`` float64 answer logits with the MLP activations at '=' replaced by ``neurons``.

        Exact for this architecture: after the MLP there is no nonlinearity (no LayerNorm, one
        layer), so the activations at '=' reach the logits only through ``W_L = W_out W_U``.
        It equals running the model under ``causal.replace_activations`` (tested), without a pass.

        Args:
            neurons: ``[p*p, d_mlp]`` replacement activations in grid order.
        """
        return self.answer_logits + (neurons.double() - self.neurons.double()) @ self.w_logit


def grid_cache(model, task: ModularTask) -> GridCache:
    """Run ``model`` once over the grid (chunked) and keep what the probes need.

    The model is not modified: no hook outlives the call, weights are copied.
    """
    config = check_compatible(model, task)
    logits, acts = grid_run(
        model, task, names=[NEURONS, PATTERN],
        select={NEURONS: lambda a: a[:, -1], PATTERN: lambda a: a[:, :, -1, :]},
    )
    return GridCache(
        task=task, config=config, weights=tl_adapter.canonical_weights(model), logits=logits,
        neurons=acts[NEURONS], attention=acts[PATTERN],
    )
