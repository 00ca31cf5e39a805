"""Permutations and partitions: element orders for S_n and A_n, and their characters by pure combinatorics.

**Element order.** S_n's elements are the permutations of ``0 .. n-1`` in lexicographic order of their one-line
notation ``(p[0], ..., p[n-1])`` (``p[i]`` is the image of ``i``), as :func:`itertools.permutations` yields
them; the identity is element 0. A_n's are the even ones, in the same order.

**Composition** is left to right, as in sympy and GAP: ``x ∘ y`` applies ``x`` first, then ``y``,
so ``(x ∘ y)[i] = y[x[i]]``. This is sympy's ``Permutation`` product ``x * y``, which is what the S_n runs of
Chughtai, Chan & Nanda (2023) used to build their tables, so :func:`sympy_relabelling` is an isomorphism.

**Characters** of S_n by the Murnaghan–Nakayama rule (rim hooks removed from the beta-set of λ), so that the
characters computed numerically from the table can be matched to partitions. Partitions are tuples in
non-increasing order, named like ``"(4,1)"``.

Examples:
    >>> lexicographic_permutations(3).tolist()
    [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
    >>> mn_character((2, 1), (3,)), mn_character((3, 1, 1), (1, 1, 1, 1, 1)), cycle_type([1, 2, 0, 4, 3])
    (-1, 6, (3, 2))
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

__all__ = [
    "conjugate",
    "cycle_string",
    "cycle_type",
    "diagonal_hooks",
    "lexicographic_permutations",
    "mn_character",
    "partition_name",
    "partitions",
    "permutation_table",
    "signs",
    "sympy_relabelling",
]


def lexicographic_permutations(n: int) -> torch.Tensor:
    """``[n!, n]`` int64: all permutations of ``0..n-1`` in lexicographic order."""
    if n == 0:
        return torch.zeros(1, 0, dtype=torch.int64)
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.int64)


def _codes(perms: torch.Tensor) -> torch.Tensor:
    n = perms.shape[1]
    weights = torch.tensor([n ** (n - 1 - i) for i in range(n)], dtype=torch.int64)
    return perms @ weights  # base-n number; increasing in lexicographic order


def permutation_table(perms: torch.Tensor) -> torch.Tensor:
    """``[N, N]`` int64 Cayley table of a list of permutations ``[N, n]`` sorted lexicographically and closed
    under composition: ``table[x, y]`` is the index of ``x ∘ y`` (``(x ∘ y)[i] = y[x[i]]``)."""
    count, n = perms.shape
    codes = _codes(perms)
    table = torch.empty(count, count, dtype=torch.int64)
    rows = max(1, 2**22 // max(1, count * n))
    for start in range(0, count, rows):
        x = perms[start : start + rows]  # [b, n]
        composed = perms[torch.arange(count)[None, :, None], x[:, None, :]]  # [b, N(y), n]: y[x[i]]
        table[start : start + rows] = torch.searchsorted(codes, _codes(composed.reshape(-1, n))).reshape(len(x), -1)
    return table


def signs(perms: torch.Tensor) -> torch.Tensor:
    """``[N]`` int64 signs (+1 even, -1 odd) by counting inversions."""
    n = perms.shape[1]
    inv = torch.zeros(perms.shape[0], dtype=torch.int64)
    for i in range(n):
        for j in range(i + 1, n):
            inv += (perms[:, i] > perms[:, j]).long()
    return 1 - 2 * (inv % 2)


def cycle_type(perm) -> tuple[int, ...]:
    """Cycle lengths (including fixed points) in non-increasing order, e.g. ``(3, 2)``."""
    perm = [int(v) for v in perm]
    seen = [False] * len(perm)
    lengths = []
    for i in range(len(perm)):
        if not seen[i]:
            length, j = 0, i
            while not seen[j]:
                seen[j], j, length = True, perm[j], length + 1
            lengths.append(length)
    return tuple(sorted(lengths, reverse=True))


def cycle_string(perm) -> str:
    """Cycle notation without fixed points, e.g. ``"(0 1 2)(3 4)"``; ``"e"`` for the identity."""
    perm = [int(v) for v in perm]
    seen = [False] * len(perm)
    parts = []
    for i in range(len(perm)):
        if not seen[i] and perm[i] != i:
            cyc, j = [], i
            while not seen[j]:
                seen[j] = True
                cyc.append(str(j))
                j = perm[j]
            parts.append("(" + " ".join(cyc) + ")")
        seen[i] = True
    return "".join(parts) or "e"


def partitions(n: int) -> list[tuple[int, ...]]:
    """Partitions of ``n`` in reverse lexicographic order: ``(n)``, ``(n-1, 1)``, ..., ``(1, ..., 1)``."""

    def gen(rest: int, most: int):
        if rest == 0:
            yield ()
            return
        for first in range(min(rest, most), 0, -1):
            for tail in gen(rest - first, first):
                yield (first, *tail)

    return list(gen(n, n))


def partition_name(la: tuple[int, ...]) -> str:
    return "(" + ",".join(map(str, la)) + ")"


def conjugate(la: tuple[int, ...]) -> tuple[int, ...]:
    """The transposed partition λ'."""
    return tuple(sum(1 for part in la if part > i) for i in range(la[0])) if la else ()


def diagonal_hooks(la: tuple[int, ...]) -> tuple[int, ...]:
    """Hook lengths on the diagonal of λ: ``λ_i + λ'_i - 2i - 1`` (0-based ``i``) while ``λ_i > i``."""
    lc = conjugate(la)
    return tuple(la[i] + lc[i] - 2 * i - 1 for i in range(len(la)) if la[i] > i)


@functools.cache
def mn_character(la: tuple[int, ...], mu: tuple[int, ...]) -> int:
    """χ^λ on the class of cycle type μ, by the Murnaghan–Nakayama rule.

    Removing a rim hook of length ``h`` from λ is replacing a beta-number ``b`` by ``b - h`` (not already a
    beta-number, ``>= 0``); its sign is ``(-1)^(beta-numbers strictly between b - h and b)``.
    """
    if not mu:
        return 1 if sum(la) == 0 else 0
    h, rest = mu[0], mu[1:]
    k = len(la)
    beta = [la[i] + (k - 1 - i) for i in range(k)]
    present = set(beta)
    total = 0
    for b in beta:
        c = b - h
        if c < 0 or c in present:
            continue
        sign = -1 if sum(1 for x in beta if c < x < b) % 2 else 1
        new = sorted((present - {b}) | {c}, reverse=True)
        shape = tuple(x - (k - 1 - i) for i, x in enumerate(new))
        total += sign * mn_character(tuple(p for p in shape if p > 0), rest)
    return total


def dimension(la: tuple[int, ...]) -> int:
    """``χ^λ(e)`` by the hook length formula."""
    lc = conjugate(la)
    hooks = math.prod(la[i] - j + lc[j] - i - 1 for i in range(len(la)) for j in range(la[i]))
    return math.factorial(sum(la)) // hooks


def sympy_relabelling(n: int) -> torch.Tensor:
    """``[n!]`` int64 ``σ``: ``σ[k]`` is the index in :func:`~modadd_interp.groups.symmetric` of the ``k``-th
    element of sympy's ``SymmetricGroup(n)`` enumeration (``list(SymmetricGroup(n).generate())``, the list that
    sympy's ``_elements`` holds and Chughtai et al.'s ``utils/groups.py`` indexes).

    Both use the product ``x * y`` = "x first", so ``σ`` is an isomorphism:
    ``symmetric(n).table[σ[a], σ[b]] == σ[sympy_table[a, b]]``. A tensor indexed by sympy's order, ``f_sympy``,
    reads ``f_ours = f_sympy[σ.argsort()]`` in ours. sympy is imported here only (it is not a dependency of
    the package); the order is the installed sympy's, so use the same sympy version as the run being read.

    Examples:
        >>> sympy_relabelling(3).tolist()
        [0, 3, 4, 1, 2, 5]
    """
    from sympy.combinatorics.named_groups import SymmetricGroup  # lazy: optional

    codes = _codes(lexicographic_permutations(n))
    theirs = torch.tensor([list(p.array_form) for p in SymmetricGroup(n).generate()], dtype=torch.int64)
    return torch.searchsorted(codes, _codes(theirs.reshape(-1, n)))
