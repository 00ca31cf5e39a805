"""Zhong et al.'s diagnostics of clock vs pizza: gradient symmetricity, distance irrelevance, circularity.

From their definitions (``code/eval-main.ipynb`` of ``fjzzq2002/pizza``), in the operation's group
coordinates (for ``add`` exactly theirs):

* **gradient symmetricity**: for sampled triples ``(a, b, c)``, the cosine similarity between the gradients of
  logit ``c`` (last position) with respect to the two operands' token embeddings (before the positional
  embedding), averaged. Their sample is the first :data:`GRADIENT_TRIPLES` triples of
  ``random.Random(42).shuffle`` over all ``n^3`` triples, which we reproduce while ``n^3`` <=
  :data:`EXACT_SAMPLE_LIMIT`; above it, a seeded ``torch`` sample of the same size (a Python shuffle of
  ``113^3`` triples takes seconds, of ``1009^3`` hours). A pizza is symmetric in ``a`` and ``b``: high; a
  clock is not: lower.
* **distance irrelevance**: the correct-answer logits arranged by ``(a + b, a - b)``: the mean over ``a - b`` of
  the standard deviation over ``a + b``, over the overall standard deviation
  (:func:`modadd_interp.readout.distance_irrelevance`). A clock's correct logit ignores ``a - b``: high; a pizza's
  follows it: low. Their training script logs a variant on the largest *incorrect* logit (a variable
  overwritten before use; their ``result/*.csv`` hold it); we use the notebook's, the paper's definition.
* **circularity**: how close the embedding's top 4 principal components are to single Fourier modes
  (:func:`modadd_interp.fourier.circularity`). Their PCA runs over every token row; we use the numbers' rows
  (in group order), so a model with an ``'='`` token differs from theirs by that row.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> diag = zhong_diagnostics(model, task)
    >>> diag.gradient_symmetricity, diag.distance_irrelevance, diag.circularity
    (0.46, 0.75, 0.82)
"""

from __future__ import annotations

import dataclasses
import functools
import random

import torch

from .. import tl_adapter
from ..display import Displayable, Summary
from ..fourier import circularity
from ..hook_names import EMBED
from ..readout import distance_irrelevance
from ..task import ModularTask
from .cache import GridCache, grid_cache

GRADIENT_TRIPLES = 100
EXACT_SAMPLE_LIMIT = 250_000
"""The authors' sample is drawn exactly up to n^3 = 250,000 (n <= 62, their p = 59 included): a Python shuffle
of n^3 triples takes about a second per million on this CPU."""
CIRCULARITY_COMPONENTS = 4


@dataclasses.dataclass(frozen=True, repr=False)
class ZhongDiagnostics(Displayable):
    """The three diagnostics, and how the gradient sample was drawn."""

    gradient_symmetricity: float
    distance_irrelevance: float
    circularity: float
    sample: str

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return dataclasses.asdict(self)

    def _summary(self) -> Summary:
        return Summary(f"gradient symmetricity {self.gradient_symmetricity:.3f}, distance irrelevance "
                       f"{self.distance_irrelevance:.3f}, circularity {self.circularity:.3f}",
                       details=["Zhong et al.: a pizza is symmetric in a and b (high symmetricity) and its correct "
                                "logit follows a − b (low distance irrelevance); a clock the reverse",
                                f"gradient sample: {self.sample}"],
                       rows={"gradient symmetricity": self.gradient_symmetricity,
                             "distance irrelevance": self.distance_irrelevance, "circularity": self.circularity})


@functools.lru_cache(maxsize=8)
def gradient_triples(n: int, count: int = GRADIENT_TRIPLES, seed: int = 42) -> tuple[torch.Tensor, str]:
    """``([count, 3] triples (x, y, z), how they were drawn)`` (see the module docstring; remembered per n)."""
    if n**3 <= EXACT_SAMPLE_LIMIT:
        triples = [(a, b, c) for a in range(n) for b in range(n) for c in range(n)]
        random.Random(seed).shuffle(triples)
        return torch.tensor(triples[:count]), f"the authors' sample (random.Random({seed}), first {count})"
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (count, 3), generator=generator), (
        f"torch sample of {count} (seed {seed}; n^3 > {EXACT_SAMPLE_LIMIT:,})")


def gradient_symmetricity(model, task: ModularTask, count: int = GRADIENT_TRIPLES, seed: int = 42
                          ) -> tuple[float, str]:
    """Mean cosine similarity of the gradients of logit ``c`` w.r.t. the two operand embeddings; and the sample."""
    grid, cfg = task.grid, tl_adapter.model_config(model)
    triples, how = gradient_triples(grid.n, count, seed)
    pairs = torch.stack([grid.coords.a_tokens[triples[:, 0]], grid.coords.b_tokens[triples[:, 1]]], 1)
    answers = grid.coords.c_tokens[triples[:, 2]]
    leaf: dict[str, torch.Tensor] = {}

    def capture(embedding: torch.Tensor) -> torch.Tensor:
        leaf["e"] = embedding.detach().clone().requires_grad_(True)
        return leaf["e"]

    with torch.enable_grad(), tl_adapter.hooked(model, [(EMBED, capture)]):
        logits = model(cfg.encode(pairs))[:, -1]
        picked = logits.gather(1, answers[:, None]).sum()
        (grad,) = torch.autograd.grad(picked, [leaf["e"]])
    a, b = grad[:, 0].double(), grad[:, 1].double()
    cosine = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-300)
    return float(cosine.mean()), how


def zhong_diagnostics(model, task: ModularTask, cache: GridCache | None = None) -> ZhongDiagnostics:
    """Gradient symmetricity, distance irrelevance and circularity of ``model`` (module docstring)."""
    cache = cache or grid_cache(model, task)
    symmetricity, how = gradient_symmetricity(model, task)
    n = cache.grid.n
    embeddings = cache.number_embeddings()[:, : cache.config.d_model]
    return ZhongDiagnostics(symmetricity, distance_irrelevance(cache.correct_logits, n),
                            circularity(embeddings, CIRCULARITY_COMPONENTS), how)
