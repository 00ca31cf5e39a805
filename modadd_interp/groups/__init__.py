"""Finite groups for interpretability: Cayley tables, characters, real irreps, projections and bases.

Pure math at the bottom of the package: imports only torch, numpy, the standard library,
:mod:`modadd_interp.errors` and :mod:`modadd_interp.fourier`. See ``docs/groups.md``.

Modules: :mod:`.validation` (is this table a group's), :mod:`.group` (:class:`Group`), :mod:`.characters`
(Burnside–Dixon), :mod:`.irreps` (real irreps from characters), :mod:`.harmonic` (projectors, energy, basis,
transform), :mod:`.representations` (orthogonal matrices), :mod:`.permutations` (S_n, A_n, partitions),
:mod:`.families` (named groups), :mod:`.names` (:func:`by_name`), :mod:`.identify` (:func:`identify`).

Examples:
    >>> from modadd_interp import groups
    >>> s5 = groups.by_name("S5")
    >>> s5
    S5 (order 120, 7 classes, 7 irreps)
    >>> [r.name for r in s5.irreps]
    ['(5)', '(1,1,1,1,1)', '(4,1)', '(2,1,1,1)', '(3,2)', '(2,2,1)', '(3,1,1)']
    >>> s5.representation("standard").shape
    torch.Size([120, 4, 4])
"""

from .families import (
    alternating,
    cyclic,
    dihedral,
    direct_product,
    from_table,
    multiplicative,
    relabelled,
    symmetric,
)
from .group import Group
from .identify import Identification, identify
from .irreps import Irrep
from .names import by_name
from .permutations import sympy_relabelling
from .sympy_orders import sympy_group, sympy_order
from .validation import check_table

__all__ = [
    "Group",
    "Identification",
    "Irrep",
    "alternating",
    "by_name",
    "check_table",
    "cyclic",
    "dihedral",
    "direct_product",
    "from_table",
    "identify",
    "multiplicative",
    "relabelled",
    "symmetric",
    "sympy_group",
    "sympy_order",
    "sympy_relabelling",
]
