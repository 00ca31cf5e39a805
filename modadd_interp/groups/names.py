"""Parse the group names the CLI uses (``--group S5``).

Accepted forms (case-insensitive letter, no spaces):

=================  =============================================
``C113``           cyclic group of order 113
``D59``            dihedral group of the 59-gon (order 118)
``S5``             symmetric group on 5 points (order 120)
``A5``             alternating group on 5 points (order 60)
``U113``           (Z/113)*, the multiplicative group mod a prime
``Z113*``          the same as ``U113``
``C2xS4``          a direct product (``x`` or ``×`` between factors)
=================  =============================================

Examples:
    >>> by_name("D59").order, by_name("Z7*").name, by_name("c2xs3").name
    (118, 'U7', 'C2xS3')
"""

from __future__ import annotations

import re

from ..errors import GroupError
from .families import alternating, cyclic, dihedral, direct_product, multiplicative, symmetric
from .group import Group

__all__ = ["FORMS", "by_name"]

FORMS = (
    "C<n> (cyclic), D<n> (dihedral, order 2n), S<n> (symmetric), A<n> (alternating), U<p> or Z<p>* "
    "((Z/p)* for a prime p), and products such as C2xS4"
)

_ONE = re.compile(r"^(?:([CDSAU])(\d+)|Z(\d+)\*)$", re.IGNORECASE)
_BUILD = {"C": cyclic, "D": dihedral, "S": symmetric, "A": alternating, "U": multiplicative}


def _one(text: str) -> Group:
    m = _ONE.match(text)
    if not m:
        raise GroupError(f"unknown group name {text!r}; accepted forms: {FORMS}")
    letter, number = (m.group(1).upper(), m.group(2)) if m.group(1) else ("U", m.group(3))
    return _BUILD[letter](int(number))


def by_name(name: str) -> Group:
    """The group named ``name`` (forms in the module docstring).

    Raises:
        GroupError: for an unknown form (listing the accepted ones) or invalid parameters (e.g. ``U8``).
    """
    if not isinstance(name, str) or not name.strip():
        raise GroupError(f"a group name must be a non-empty string; accepted forms: {FORMS}")
    parts = re.split(r"[xX×]", name.strip())
    if any(not p for p in parts):
        raise GroupError(f"unknown group name {name!r}; accepted forms: {FORMS}")
    group = _one(parts[0])
    for p in parts[1:]:
        group = direct_product(group, _one(p))
    return group
