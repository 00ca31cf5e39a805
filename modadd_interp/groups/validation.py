"""Check that an n×n Cayley table is a group's, cheaply.

A table ``table[i, j] = index of g_i ∘ g_j`` is checked in this order, each failure a
:class:`~modadd_interp.errors.GroupError` naming the first offending entry:

1. a square 2-D array of integers, ``n >= 1``;
2. every entry an element index ``0 .. n-1``;
3. a Latin square (each element exactly once in every row and every column);
4. an identity ``e`` (``e ∘ x = x ∘ e = x`` for all x);
5. two-sided inverses (the ``y`` with ``x ∘ y = e`` also has ``y ∘ x = e``);
6. associativity by **Light's test** over a generating set ``S``: ``x ∘ (g ∘ y) == (x ∘ g) ∘ y`` for all
   ``x, y`` and every ``g`` in ``S``. The elements ``g`` passing this form a sub-magma (if ``a`` and ``b`` pass,
   ``x((ab)y) = x(a(by)) = (xa)(by) = ((xa)b)y = (x(ab))y``), so when ``S`` generates, every element passes.
   Cost ``O(n² · |S|)`` instead of ``O(n³)``; ``S`` is chosen greedily (the smallest element not yet generated),
   so ``|S| <= log2(n)`` for a group (each new generator at least doubles the generated subgroup).

Examples:
    >>> import torch
    >>> t = check_table([[0, 1], [1, 0]])
    >>> t.dtype, generating_set(t)
    (torch.int64, (1,))
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import GroupError

__all__ = ["as_table", "check_table", "generating_set", "identity_of", "inverses_of"]


def as_table(table) -> torch.Tensor:
    """The table as a contiguous int64 tensor ``[n, n]`` (a torch tensor, numpy array or nested lists)."""
    if isinstance(table, torch.Tensor):
        t = table.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(table))
        except (TypeError, ValueError) as exc:
            raise GroupError(
                f"a Cayley table must be an n×n array of element indices; could not read it ({exc})"
            ) from exc
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise GroupError(f"a Cayley table must hold integer element indices, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise GroupError(f"a Cayley table must be a square n×n array, got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise GroupError("a Cayley table must have at least one element (the identity), got shape (0, 0)")
    return t.to(torch.int64).contiguous()


def identity_of(table: torch.Tensor) -> int:
    """Index of the two-sided identity of a Latin square, or raise :class:`GroupError`."""
    n = table.shape[0]
    ar = torch.arange(n)
    left = (table == ar[None, :]).all(1).nonzero().flatten()  # rows e with e∘x = x
    right = (table == ar[:, None]).all(0).nonzero().flatten()  # columns e with x∘e = x
    both = sorted(set(left.tolist()) & set(right.tolist()))
    if not both:
        raise GroupError(
            "the table has no identity element: no index e with row e = column e = 0..n-1 "
            f"(left identities {left.tolist()}, right identities {right.tolist()})"
        )
    return both[0]


def inverses_of(table: torch.Tensor, e: int) -> torch.Tensor:
    """``[n]`` int64 two-sided inverses (``table[x, inv[x]] == e``), or raise :class:`GroupError`."""
    right = (table == e).int().argmax(1)  # x∘right[x] = e (a Latin square has exactly one e per row)
    left = (table == e).int().argmax(0)  # left[x]∘x = e
    bad = (right != left).nonzero().flatten()
    if len(bad):
        x = int(bad[0])
        raise GroupError(
            f"element {x} has no two-sided inverse: {x}∘{int(right[x])} = e but {int(left[x])}∘{x} = e "
            f"(and {int(right[x])}∘{x} = {int(table[right[x], x])}); a group's inverses are two-sided"
        )
    return right


def _generated(table: torch.Tensor, gens: list[int]) -> torch.Tensor:
    """``[n]`` bool: elements reached as left-normed products ``((g1 g2) g3)...`` of ``gens``."""
    n = table.shape[0]
    reached = torch.zeros(n, dtype=torch.bool)
    if not gens:
        return reached
    g = torch.tensor(gens)
    frontier = g.unique()
    reached[frontier] = True
    while len(frontier):
        new = table[frontier][:, g].flatten().unique()
        new = new[~reached[new]]
        reached[new] = True
        frontier = new
    return reached


def generating_set(table: torch.Tensor) -> tuple[int, ...]:
    """A small generating set, greedily: add the smallest element not yet generated (deterministic).

    For a group this gives at most ``floor(log2(n))`` generators; the trivial group gives ``()``.
    Elements are generated as left-normed products, so the set also generates a non-associative table.
    """
    n = table.shape[0]
    gens: list[int] = []
    reached = torch.zeros(n, dtype=torch.bool)
    reached[identity_guess(table)] = True
    while not bool(reached.all()):
        gens.append(int((~reached).nonzero()[0]))
        reached = _generated(table, gens) | reached
    return tuple(gens)


def identity_guess(table: torch.Tensor) -> int:
    """The identity if there is one, else 0 (used only to seed :func:`generating_set`)."""
    ar = torch.arange(table.shape[0])
    rows = (table == ar[None, :]).all(1).nonzero().flatten()
    return int(rows[0]) if len(rows) else 0


def _light_witness(table: torch.Tensor, gens) -> tuple[int, int, int] | None:
    """First ``(x, g, y)`` with ``x(gy) != (xg)y`` for ``g`` in ``gens``, or None."""
    for g in gens:
        lhs = table[:, table[g]]  # [x, y] -> x ∘ (g ∘ y)
        rhs = table[table[:, g]]  # [x, y] -> (x ∘ g) ∘ y
        bad = (lhs != rhs).nonzero()
        if len(bad):
            return int(bad[0, 0]), int(g), int(bad[0, 1])
    return None


def check_table(table) -> torch.Tensor:
    """Validate a Cayley table (steps 1-6 of the module docstring); return it as int64 ``[n, n]``.

    Raises:
        GroupError: naming the first failed check and an offending entry.
    """
    t = as_table(table)
    n = t.shape[0]
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n:
        bad = ((t < 0) | (t >= n)).nonzero()[0].tolist()
        raise GroupError(
            f"Cayley table entries must be element indices 0..{n - 1}; found {int(t[bad[0], bad[1]])} at {bad}"
        )
    ar = torch.arange(n)
    for axis, what in ((1, "row"), (0, "column")):
        ok = (t.sort(dim=axis).values == (ar[None, :] if axis == 1 else ar[:, None])).all(axis)
        if not bool(ok.all()):
            i = int((~ok).nonzero()[0])
            line = t[i] if axis == 1 else t[:, i]
            counts = torch.bincount(line, minlength=n)
            raise GroupError(
                f"not a Latin square: {what} {i} has element {int(counts.argmax())} {int(counts.max())} times "
                f"(a group's table has each element exactly once in every row and column)"
            )
    e = identity_of(t)
    inverses_of(t, e)
    gens = generating_set(t)
    if len(gens) > max(1, math.floor(math.log2(n))):  # impossible for a group: find a witness if we can
        w = _light_witness(t, gens)
        where = f" e.g. {w[0]}∘({w[1]}∘{w[2]}) != ({w[0]}∘{w[1]})∘{w[2]}" if w else ""
        raise GroupError(
            f"not associative: the table needs {len(gens)} generators, more than log2({n}) as no group "
            f"of order {n} does{where}"
        )
    w = _light_witness(t, gens)
    if w is not None:
        x, g, y = w
        raise GroupError(
            f"not associative: {x}∘({g}∘{y}) = {int(t[x, t[g, y]])} but ({x}∘{g})∘{y} = {int(t[t[x, g], y])} "
            f"(Light's test over the generating set {list(gens)})"
        )
    return t
