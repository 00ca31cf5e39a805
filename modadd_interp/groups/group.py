"""The :class:`Group`: a finite group given by its Cayley table, with its classes, characters and real irreps.

Elements are the indices ``0 .. n-1``; ``table[i, j]`` is the index of ``g_i ∘ g_j``. Everything is computed
from the table (and cached per group); a family constructor (:mod:`.families`) only adds names: element names,
irrep names matched against closed-form characters, and for cyclic groups the Fourier basis.

Conjugacy classes are ordered by (element order, class size, smallest element index), so the identity's class
comes first.

Examples:
    >>> import torch
    >>> from modadd_interp.groups import Group
    >>> g = Group(torch.tensor([[(i + j) % 3 for j in range(3)] for i in range(3)]), name="Z3")
    >>> g
    Z3 (order 3, 3 classes, 2 irreps)
    >>> g.identity, g.inverse.tolist(), g.element_orders.tolist()
    (0, [0, 2, 1], [1, 3, 3])
    >>> int(g.compose(torch.tensor(1), torch.tensor(2)))
    0
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ..errors import GroupError
from . import harmonic, representations
from .characters import burnside_dixon, frobenius_schur
from .irreps import Irrep, assemble, match_labels
from .validation import check_table, generating_set, identity_of, inverses_of

__all__ = ["FamilyInfo", "Group"]


@dataclass(frozen=True)
class FamilyInfo:
    """What a family constructor knows beyond the table (internal).

    Attributes:
        labeller: ``group -> (ref [m, n_classes] complex128, labels)``: the family's closed-form complex characters
            on ``group.classes`` in the family's irrep order, with one :class:`Label` per row.
        cyclic_log: for a cyclic group, ``[n]`` int64 exponent of each element in a fixed generator (the Fourier
            basis and FFT are then used); else None.
        generators: a small generating set (element indices) used by :func:`~modadd_interp.groups.identify`.
        permutations: ``[n, m]`` int64 one-line images for permutation groups (``perm[i]`` = image of ``i``).
    """

    labeller: Callable | None = None
    cyclic_log: torch.Tensor | None = None
    generators: tuple[int, ...] | None = None
    permutations: torch.Tensor | None = None


class Group:
    """A finite group from its Cayley table ``table[i, j] = index of g_i ∘ g_j`` (validated, see
    :func:`~modadd_interp.groups.validation.check_table`).

    Args:
        table: ``[n, n]`` integer array (tensor, numpy or nested lists).
        name: a short name (default ``"G{n}"``).
        element_names: ``n`` strings naming the elements (default ``"0" .. "n-1"``).
        family: internal, set by the family constructors.

    Attributes:
        order: ``n``.
        table: ``[n, n]`` int64.
        identity: index of the identity.
        inverse: ``[n]`` int64, ``table[x, inverse[x]] == identity``.
        name, element_names, generators (a small generating set, greedy: see :mod:`.validation`).

    Raises:
        GroupError: when the table is not a group's.
    """

    def __init__(self, table, name: str | None = None, *, element_names=None, family: FamilyInfo | None = None):
        self.table = check_table(table)
        self.order = int(self.table.shape[0])
        self.identity = identity_of(self.table)
        self.inverse = inverses_of(self.table, self.identity)
        self.name = name if name is not None else f"G{self.order}"
        self.element_names = tuple(element_names) if element_names is not None else tuple(map(str, range(self.order)))
        if len(self.element_names) != self.order:
            raise GroupError(f"{len(self.element_names)} element names for a group of order {self.order}")
        self.family = family or FamilyInfo()
        self.generators = self.family.generators if self.family.generators is not None else generating_set(self.table)

    # ------------------------------------------------------------------ structure
    def compose(self, x, y) -> torch.Tensor:
        """``x ∘ y`` by table lookup; ``x``, ``y`` int index tensors (broadcast)."""
        return self.table[torch.as_tensor(x), torch.as_tensor(y)]

    @functools.cached_property
    def classes(self) -> list[torch.Tensor]:
        """Conjugacy classes (sorted int64 index tensors), ordered by (element order, size, smallest index)."""
        n, t, inv = self.order, self.table, self.inverse
        assigned = torch.zeros(n, dtype=torch.bool)
        found = []
        for g in range(n):
            if assigned[g]:
                continue
            cls = t[t[:, g], inv].unique()  # {h g h^-1 : h}
            assigned[cls] = True
            found.append(cls)
        orders = self.element_orders
        found.sort(key=lambda c: (int(orders[c[0]]), len(c), int(c[0])))
        return found

    @functools.cached_property
    def class_of(self) -> torch.Tensor:
        """``[n]`` int64: the index in :attr:`classes` of each element's class."""
        out = torch.empty(self.order, dtype=torch.int64)
        for i, c in enumerate(self.classes):
            out[c] = i
        return out

    @functools.cached_property
    def class_sizes(self) -> torch.Tensor:
        """``[n_classes]`` int64."""
        return torch.tensor([len(c) for c in self.classes], dtype=torch.int64)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @functools.cached_property
    def element_orders(self) -> torch.Tensor:
        """``[n]`` int64: the order of each element (smallest ``k >= 1`` with ``g^k = e``)."""
        n, t = self.order, self.table
        ar = torch.arange(n)
        orders = torch.zeros(n, dtype=torch.int64)
        power = ar.clone()
        for k in range(1, n + 1):
            hit = (power == self.identity) & (orders == 0)
            orders[hit] = k
            if bool((orders > 0).all()):
                break
            power = t[power, ar]
        return orders

    @functools.cached_property
    def abelian(self) -> bool:
        return bool((self.table == self.table.T).all())

    # ------------------------------------------------------------------ characters
    @functools.cached_property
    def _characters(self) -> tuple[torch.Tensor, tuple[Irrep, ...]]:
        sizes = self.class_sizes.to(torch.float64)
        reps = torch.stack([c[0] for c in self.classes])
        square_class = self.class_of[self.table[reps, reps]]
        if self.family.cyclic_log is not None and self.family.labeller is not None:
            # a cyclic group's fast path: its characters in closed form, exp(2 pi i k log(g) / n) (the labeller's)
            chars, labels = self.family.labeller(self)
            return assemble(chars, frobenius_schur(chars, sizes, square_class), labels)
        class_orders = self.element_orders[torch.stack([c[0] for c in self.classes])]
        chars = burnside_dixon(self.table, self.inverse, self.classes, hint=int(class_orders.argmax()))
        labels = None
        if self.family.labeller is not None:
            ref, labels = self.family.labeller(self)
            where = match_labels(chars, ref, sizes)
            ordered = torch.empty_like(chars)
            ordered[torch.tensor(where)] = chars
            chars = ordered
        nu = frobenius_schur(chars, sizes, square_class)
        return assemble(chars, nu, labels)

    @property
    def character_table(self) -> torch.Tensor:
        """``[n_complex_irreps, n_classes]`` complex128, computed from the table by Burnside–Dixon
        (:mod:`.characters`). Rows follow :attr:`irreps` (a ν = 0 pair contributes χ then χ̄)."""
        return self._characters[0]

    @property
    def irreps(self) -> tuple[Irrep, ...]:
        """The real irreducible representations, trivial first, in the family's documented order."""
        return self._characters[1]

    def irrep(self, key) -> Irrep:
        """An irrep by index, name or alias (or an :class:`Irrep` of this group, returned as is)."""
        irreps = self.irreps
        if isinstance(key, Irrep):
            if key.index < len(irreps) and irreps[key.index] is key:
                return key
            raise GroupError(f"{key!r} is not an irrep of {self.name}")
        if not isinstance(key, (str, bool)):
            try:
                index = operator.index(key)  # int, numpy or 0-d torch integers
            except TypeError:
                raise GroupError(f"an irrep is an index, a name or an Irrep, got {key!r}") from None
            if 0 <= index < len(irreps):
                return irreps[index]
            raise GroupError(f"{self.name} has {len(irreps)} irreps, got index {index}")
        for r in irreps:
            if key == r.name or key in r.aliases:
                return r
        names = ", ".join(repr(r.name) + (f" ({'/'.join(r.aliases)})" if r.aliases else "") for r in irreps)
        raise GroupError(f"{self.name} has no irrep {key!r}; its irreps are {names}")

    def _irreps(self, keys) -> list[Irrep]:
        if isinstance(keys, (int, str, Irrep)) or (isinstance(keys, torch.Tensor) and keys.ndim == 0):
            return [self.irrep(keys)]
        if isinstance(keys, Iterable):
            return [self.irrep(k) for k in keys]
        raise GroupError(f"expected an irrep (index, name or Irrep) or a list of them, got {keys!r}")

    def chi(self, irrep) -> torch.Tensor:
        """``[n]`` float64: the real character (trace of :meth:`representation`) of each element."""
        return self.irrep(irrep).character[self.class_of]

    def trace_of_product(self, irrep, x, y, z) -> torch.Tensor:
        """``tr R(x) R(y) R(z)ᵀ = χ(x ∘ y ∘ z⁻¹)`` by table lookups (``R`` the real orthogonal representation,
        ``R(z)ᵀ = R(z⁻¹)``); ``x, y, z`` int index tensors, broadcast. The "trace readout" of a logit for ``z``."""
        xy = self.compose(x, y)
        return self.chi(irrep)[self.table[xy, self.inverse[torch.as_tensor(z)]]]

    # ------------------------------------------------------------------ functions on G
    def projector(self, irrep) -> torch.Tensor:
        """``[n, n]`` float64 orthogonal projector onto the irrep's isotypic component (:mod:`.harmonic`)."""
        return harmonic.projector(self, self.irrep(irrep))

    def project(self, f: torch.Tensor, irreps, dim: int = 0) -> torch.Tensor:
        """``f`` (size ``n`` along ``dim``) projected onto the sum of the given irreps' isotypic components."""
        return harmonic.project(self, f, self._irreps(irreps), dim)

    def energy(self, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """``[n_irreps, *rest]``: squared norm of ``f``'s component in each irrep (sums to ``|f|²``)."""
        return harmonic.energy(self, f, dim)

    def representation(self, irrep) -> torch.Tensor:
        """``[n, r, r]`` float64 real orthogonal matrices of the irrep (``r = real_dim``):
        ``R(g) R(h) = R(g ∘ h)``, ``R(g)ᵀ R(g) = I``, ``tr R(g) = chi(irrep)[g]`` (:mod:`.representations`)."""
        return representations.representation(self, self.irrep(irrep))

    def basis(self) -> torch.Tensor:
        """``[n, n]`` float64 orthonormal real basis of functions on G, rows grouped by irrep
        (:attr:`irrep_of_row`); for a cyclic group exactly :func:`modadd_interp.fourier.fourier_basis`."""
        return harmonic.basis(self)

    @property
    def irrep_of_row(self) -> torch.Tensor:
        """``[n]`` int64: the irrep index of each row of :meth:`basis`."""
        return harmonic.irrep_of_row(self)

    def transform(self, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Coefficients of ``f`` in :meth:`basis` along ``dim`` (same shape); the FFT path for cyclic groups."""
        return harmonic.transform(self, f, dim)

    def inverse_transform(self, coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Inverse of :meth:`transform` (the basis is orthonormal)."""
        return harmonic.inverse_transform(self, coeffs, dim)

    def __repr__(self) -> str:
        return f"{self.name} (order {self.order}, {self.n_classes} classes, {len(self.irreps)} irreps)"
