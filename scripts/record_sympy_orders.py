"""Record sympy's element enumerations of S_n (n <= 6) and of Chughtai et al.'s A5 into
``modadd_interp/groups/sympy_orders_data.py``, so that reading their checkpoints needs no sympy.

Each enumeration is stored as the indices, in :func:`modadd_interp.groups.symmetric` (or ``alternating``) order, of
sympy's elements in the order ``PermutationGroup.generate()`` yields them (what ``G._elements`` holds):

* ``S{n}``: ``SymmetricGroup(n)`` (generators ``(0 1 ... n-1)`` and ``(0 1)``);
* ``A5``: ``PermutationGroup(Permutation(0, 1, 2, 3, 4), Permutation(1, 2)(3, 4))``, the group Chughtai et al.'s
  ``AlternatingGroup(5)`` builds.

Usage: ``python scripts/record_sympy_orders.py`` (needs sympy; the recorded orders were checked against the runs
of Chughtai et al., trained with sympy 1.11.1: see docs/formats.md).
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import sympy
from sympy.combinatorics import Permutation, PermutationGroup
from sympy.combinatorics.named_groups import SymmetricGroup

OUT = Path(__file__).resolve().parents[1] / "modadd_interp" / "groups" / "sympy_orders_data.py"


def ranks(elements, ours: list[tuple[int, ...]]) -> list[int]:
    index = {p: i for i, p in enumerate(ours)}
    return [index[tuple(p.array_form)] for p in elements]


def main() -> None:
    orders = {}
    for n in range(1, 7):
        lex = list(itertools.permutations(range(n)))
        orders[f"S{n}"] = ranks(SymmetricGroup(n).generate(), lex)
    even = [p for p in itertools.permutations(range(5)) if Permutation(list(p)).is_even]
    orders["A5"] = ranks(PermutationGroup(Permutation(0, 1, 2, 3, 4), Permutation(1, 2)(3, 4)).generate(), even)
    lines = ['"""Recorded by scripts/record_sympy_orders.py (sympy ' + sympy.__version__ + '); do not edit.',
             "",
             "``ORDERS[name]``: the space-separated indices, in our element order, of sympy's elements in its",
             'enumeration order (see :mod:`modadd_interp.groups.sympy_orders`)."""', "", "ORDERS = {"]
    for name, values in orders.items():
        text = " ".join(map(str, values))
        chunks = textwrap.wrap(text, 100)
        lines.append(f'    "{name}": (')
        lines += [f'        "{c} "' for c in chunks[:-1]] + [f'        "{chunks[-1]}"']
        lines.append("    ),")
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
