"""sympy's element orders of S_n and A_5, recorded, so that checkpoints indexed by them read without sympy.

Chughtai, Chan & Nanda (2023, ``utils/groups.py``) index S_n's elements as sympy's ``SymmetricGroup(n)._elements``
(the list ``generate()`` yields: Schreier–Sims cosets, not lexicographic) and A_5's as those of
``PermutationGroup(Permutation(0, 1, 2, 3, 4), Permutation(1, 2)(3, 4))``; both compose with sympy's ``x * y``
(apply ``x``, then ``y``), as :func:`~modadd_interp.groups.symmetric` does. This module holds those orders as
recorded by ``scripts/record_sympy_orders.py`` (:mod:`.sympy_orders_data`: S_1 .. S_6 and their A_5), checked
against the installed sympy by ``tests/test_chughtai_format.py`` and against their trained runs (docs/formats.md).

Examples:
    >>> sympy_order("S", 3).tolist()                      # sympy's k-th element is our element sigma[k]
    [0, 3, 4, 1, 2, 5]
    >>> g = sympy_group("S", 4)
    >>> g.name, g.order, int(g.identity) == int(sympy_order("S", 4).argsort()[0])
    ('S4', 24, True)
"""

from __future__ import annotations

import torch

from ..errors import GroupError
from .families import alternating, relabelled, symmetric
from .group import Group
from .sympy_orders_data import ORDERS

KINDS = ("S", "A")


def recorded(kind: str, n: int) -> bool:
    """True when the order of ``{kind}{n}`` is recorded (S_1 .. S_6, A_5)."""
    return f"{kind}{n}" in ORDERS


def sympy_order(kind: str, n: int) -> torch.Tensor:
    """``[|G|]`` int64 ``sigma``: sympy's ``k``-th element is element ``sigma[k]`` of ``symmetric(n)`` (``kind="S"``)
    or ``alternating(n)`` (``kind="A"``, only A_5: Chughtai et al.'s generators, module docstring).

    Raises:
        GroupError: the order of this group is not recorded (S_n for n > 6, A_n for n != 5); the message says how to
            compute it with sympy (:func:`~modadd_interp.groups.sympy_relabelling`).
    """
    key = f"{kind}{n}"
    if key not in ORDERS:
        raise GroupError(
            f"sympy's element order of {key} is not recorded (recorded: {', '.join(ORDERS)}); for S_n, "
            "modadd_interp.groups.sympy_relabelling(n) computes it with the installed sympy."
        )
    return torch.tensor([int(v) for v in ORDERS[key].split()], dtype=torch.int64)


def sympy_group(kind: str, n: int) -> Group:
    """S_n or A_5 in sympy's element order: :func:`~.families.relabelled` by :func:`sympy_order`, named ``"S{n}"`` /
    ``"A{n}"`` (irreps keep their names; the Cayley table is sympy's ``x * y``).

    Raises:
        GroupError: ``kind`` is not ``"S"`` or ``"A"``, or the order is not recorded.
    """
    if kind not in KINDS:
        raise GroupError(f"sympy orders are recorded for S_n and A_5, not {kind!r}.")
    family = symmetric(n) if kind == "S" else alternating(n)
    return relabelled(family, sympy_order(kind, n), f"{kind}{n}")
