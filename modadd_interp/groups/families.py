"""Named families of groups, each with a documented element order and irreps named the way papers name them.

Every constructor builds the Cayley table, validates it, and names the irreps by matching the characters
computed from the table against the family's closed-form characters (a mismatch raises). Constructors are
cached: ``symmetric(5) is symmetric(5)``; treat the returned group as read-only.

=============================  ==================================================================================
``cyclic(n)``  "C{n}"          elements ``0..n-1``, ``x ∘ y = x + y mod n``. Irreps ``"0"`` (trivial), then
                               frequency ``k = 1..n//2`` named ``"k"`` (``freq = k``; real_dim 2, or 1 for
                               ``k = n/2``). Basis: exactly ``fourier_basis(n)``.
``multiplicative(p)`` "U{p}"   (Z/p)* for a prime ``p``: element ``i`` is the integer ``i + 1`` (order ``1..p-1``),
                               ``x ∘ y = xy mod p``. Cyclic of order ``p-1`` through the discrete log to the
                               smallest primitive root ``g``; irreps named by frequency in discrete-log coordinates.
``dihedral(n)``  "D{n}"        the symmetries of the n-gon, order ``2n``. Element ``a`` is ``r^a`` and element
                               ``n + a`` is ``r^a s`` (``s r = r⁻¹ s``): ``[e, r, .., r^(n-1), s, rs, .., r^(n-1)s]``,
                               the order of Chughtai et al.'s ``DihedralGroup``. Irreps ``"trivial"``, ``"sign"``
                               (reflections -1), for even n ``"{n/2}+"`` and ``"{n/2}-"`` (``r^a ↦ (-1)^a``,
                               reflections ``±(-1)^a``), then the 2-d irreps ``"k"``, ``k = 1..(n-1)//2``
                               (``r^a ↦`` rotation by ``2πka/n``).
``symmetric(n)``  "S{n}"       permutations in lexicographic order, composed left to right (:mod:`.permutations`);
                               irreps named by partition, ``"(4,1)"``, ordered by (dimension, partition in
                               reverse lexicographic order); aliases ``trivial``, ``sign``, ``standard``.
``alternating(n)`` "A{n}"      the even permutations in the same order. Irreps named by the larger (lexicographic)
                               of ``λ, λ'``; a self-conjugate λ splits into ``"λ+"`` and ``"λ-"``, where ``λ+``
                               takes ``(ε + sqrt(ε q))/2`` on the first (in ``classes`` order, i.e. containing the
                               smaller-index permutation) of the two A_n-classes of cycle type ``h`` = the diagonal
                               hook lengths of λ (``q = Π h``, ``ε = (-1)^((n - len(h))/2)``). When ``ε = -1`` the
                               two are complex conjugates and form ONE real irrep ``"λ±"``. Ordered like S_n's,
                               by real dimension first.
``direct_product(G, H)``       elements ``(g, h)`` in row-major order ``g·|H| + h``; irreps ``"ρ⊗σ"`` (for two
  "{G}x{H}"                    ν = 0 factors also ``"ρ⊗σ*"``, the product with the conjugate of σ's first
                               character), ordered by (ρ, σ).
``from_table(table)``  "G{n}"  any group; irreps ``"χ1", "χ2", ...`` (:func:`~.irreps.assemble`).
=============================  ==================================================================================

Examples:
    >>> from modadd_interp.groups import dihedral, symmetric, alternating, multiplicative
    >>> [r.name for r in dihedral(6).irreps]
    ['trivial', 'sign', '3+', '3-', '1', '2']
    >>> [(r.name, r.dim) for r in symmetric(4).irreps]
    [('(4)', 1), ('(1,1,1,1)', 1), ('(2,2)', 2), ('(3,1)', 3), ('(2,1,1)', 3)]
    >>> [(r.name, r.real_dim) for r in alternating(4).irreps]
    [('(4)', 1), ('(2,2)±', 2), ('(3,1)', 3)]
    >>> multiplicative(7).element_names[:3], dihedral(4).element_names[4:6]
    (('1', '2', '3'), ('s', 'rs'))
"""

from __future__ import annotations

import functools
import math

import torch

from ..errors import GroupError
from .group import FamilyInfo, Group
from .irreps import Label
from .permutations import (
    conjugate,
    cycle_string,
    cycle_type,
    diagonal_hooks,
    dimension,
    lexicographic_permutations,
    mn_character,
    partition_name,
    partitions,
    permutation_table,
    signs,
)

__all__ = ["alternating", "cyclic", "dihedral", "direct_product", "from_table", "multiplicative", "symmetric"]

MAX_ORDER = 5040  # the n×n int64 table of a larger group takes > 200 MB


def _check_size(name: str, order: int) -> None:
    if order > MAX_ORDER:
        raise GroupError(f"{name} has order {order}; families are limited to order {MAX_ORDER} (an n×n table)")


def _reps(group: Group) -> torch.Tensor:
    return torch.stack([c[0] for c in group.classes])


# ------------------------------------------------------------------ cyclic
def _frequency_labeller(group: Group):
    n = group.order
    log = group.family.cyclic_log[_reps(group)].to(torch.float64)
    rows, labels = [], []
    for k in range(n // 2 + 1):
        for kk in dict.fromkeys([k, (n - k) % n]):
            rows.append(torch.exp(2j * math.pi * kk * log / n))
            labels.append(Label(str(k), ("trivial",) if k == 0 else (), k))
    return torch.stack(rows), labels


@functools.lru_cache(maxsize=32)
def cyclic(n: int) -> Group:
    """C_n: elements ``0..n-1``, ``x ∘ y = (x + y) mod n``; irreps ``"0"`` (trivial) and frequencies ``"1"..``.

    Examples:
        >>> c = cyclic(6)
        >>> c, [(r.name, r.real_dim, r.freq) for r in c.irreps]
        (C6 (order 6, 6 classes, 4 irreps), [('0', 1, 0), ('1', 2, 1), ('2', 2, 2), ('3', 1, 3)])
    """
    n = _positive(n, "cyclic")
    _check_size(f"C{n}", n)
    ar = torch.arange(n)
    table = (ar[:, None] + ar[None, :]) % n
    info = FamilyInfo(labeller=_frequency_labeller, cyclic_log=ar.clone(), generators=(1,) if n > 1 else ())
    return Group(table, f"C{n}", family=info)


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % q for q in range(2, math.isqrt(p) + 1))


def primitive_root(p: int) -> int:
    """The smallest primitive root modulo the prime ``p`` (1 for ``p = 2``)."""
    if p == 2:
        return 1
    factors = [q for q in range(2, p) if (p - 1) % q == 0 and _is_prime(q)]
    return next(g for g in range(2, p) if all(pow(g, (p - 1) // q, p) != 1 for q in factors))


@functools.lru_cache(maxsize=32)
def multiplicative(p: int) -> Group:
    """(Z/p)*, named ``"U{p}"``: element ``i`` is the integer ``i + 1``; ``x ∘ y = x·y mod p``.

    Isomorphic to C_{p-1} by the discrete log to ``g`` = the smallest primitive root; irreps are named by their
    frequency in those coordinates (``"k"`` is ``x ↦ exp(2πi k log_g(x) / (p-1))``), the basis is the Fourier
    basis of C_{p-1} read through the log, and :meth:`~Group.transform` uses the FFT.

    Examples:
        >>> u = multiplicative(7)
        >>> u, primitive_root(7), u.family.cyclic_log.tolist()
        (U7 (order 6, 6 classes, 4 irreps), 3, [0, 2, 1, 4, 5, 3])
    """
    p = _positive(p, "multiplicative")
    if not _is_prime(p):
        raise GroupError(f"multiplicative(p) needs a prime p, got {p}")
    _check_size(f"U{p}", p - 1)
    g = primitive_root(p)
    log = torch.empty(p - 1, dtype=torch.int64)
    x = 1
    for k in range(p - 1):
        log[x - 1] = k
        x = x * g % p
    vals = torch.arange(1, p)
    table = (vals[:, None] * vals[None, :]) % p - 1
    gens = (g - 1,) if p > 2 else ()
    info = FamilyInfo(labeller=_frequency_labeller, cyclic_log=log, generators=gens)
    return Group(table, f"U{p}", element_names=[str(v) for v in range(1, p)], family=info)


# ------------------------------------------------------------------ dihedral
def _dihedral_labeller(group: Group):
    n = group.order // 2
    reps = _reps(group)
    a, refl = (reps % n).to(torch.float64), reps >= n
    one = torch.ones(len(reps), dtype=torch.complex128)
    rows = [one, torch.where(refl, -1.0, 1.0).to(torch.complex128)]
    labels = [Label("trivial", (), 0), Label("sign", (), 0)]
    if n % 2 == 0:
        alt = torch.cos(math.pi * a)
        rows += [alt.to(torch.complex128), torch.where(refl, -alt, alt).to(torch.complex128)]
        labels += [Label(f"{n // 2}+", (), n // 2), Label(f"{n // 2}-", (), n // 2)]
    for k in range(1, (n - 1) // 2 + 1):
        rows.append(torch.where(refl, 0.0, 2 * torch.cos(2 * math.pi * k * a / n)).to(torch.complex128))
        labels.append(Label(str(k), (), k))
    return torch.stack(rows), labels


@functools.lru_cache(maxsize=32)
def dihedral(n: int) -> Group:
    """D_n, the symmetries of the regular n-gon, order ``2n`` (``dihedral(59)`` has order 118).

    Element ``a`` is the rotation ``r^a``, element ``n + a`` is ``r^a s`` (``s`` a reflection, ``s r = r⁻¹ s``):
    ``r^a s^b ∘ r^c s^d = r^(a + (-1)^b c) s^(b + d)``. This is the order and product of ``DihedralGroup`` in
    Chughtai, Chan & Nanda's ``utils/groups.py`` (index ``a + b·n``, left factor first).

    Examples:
        >>> d = dihedral(5)
        >>> d, d.element_names[:3], d.element_names[5:7], int(d.compose(6, 1))  # rs ∘ r = s
        (D5 (order 10, 4 classes, 4 irreps), ('e', 'r', 'r^2'), ('s', 'rs'), 5)
    """
    n = _positive(n, "dihedral")
    _check_size(f"D{n}", 2 * n)
    idx = torch.arange(2 * n)
    a, b = idx % n, idx // n
    sign = 1 - 2 * b  # (-1)^b of the left factor
    rot = (a[:, None] + sign[:, None] * a[None, :]) % n
    table = rot + n * ((b[:, None] + b[None, :]) % 2)

    def name(i: int) -> str:
        k = i % n
        r = "" if k == 0 else ("r" if k == 1 else f"r^{k}")
        return (r + "s") if i >= n else (r or "e")

    gens = tuple(dict.fromkeys(g for g in ((1 % n), n) if g != 0))
    info = FamilyInfo(labeller=_dihedral_labeller, generators=gens)
    return Group(table, f"D{n}", element_names=[name(i) for i in range(2 * n)], family=info)


# ------------------------------------------------------------------ symmetric and alternating
def _cycle_types(group: Group) -> list[tuple[int, ...]]:
    return [cycle_type(group.family.permutations[int(r)]) for r in _reps(group)]


def _symmetric_labeller(group: Group):
    m = group.family.permutations.shape[1]
    types = _cycle_types(group)
    order = sorted(partitions(m), key=lambda la: (dimension(la), [-x for x in la]))
    rows, labels = [], []
    for la in order:
        rows.append(torch.tensor([float(mn_character(la, mu)) for mu in types], dtype=torch.complex128))
        labels.append(Label(partition_name(la), _aliases(la, m)))
    return torch.stack(rows), labels


def _aliases(la: tuple[int, ...], m: int) -> tuple[str, ...]:
    out = []
    if la == (m,):
        out.append("trivial")
    if la == (1,) * m and m > 1:
        out.append("sign")
    if la == (m - 1, 1) and m > 2:
        out.append("standard")
    return tuple(out)


def _permutation_group(perms: torch.Tensor, name: str, labeller, gens) -> Group:
    table = permutation_table(perms)
    info = FamilyInfo(labeller=labeller, generators=gens, permutations=perms)
    return Group(table, name, element_names=[cycle_string(p) for p in perms.tolist()], family=info)


def _index_of(perms: torch.Tensor, images: list[int]) -> int:
    return int((perms == torch.tensor(images)).all(1).nonzero()[0])


@functools.lru_cache(maxsize=16)
def symmetric(n: int) -> Group:
    """S_n: permutations of ``0..n-1`` in lexicographic order of one-line notation (element 0 is the identity),
    ``x ∘ y`` = apply ``x``, then ``y`` (sympy's ``x * y``; see :mod:`.permutations` and
    :func:`~.permutations.sympy_relabelling` for sympy's enumeration order).

    Irreps named by partition (``"(4,1)"``), ordered by (dimension, partition in reverse lexicographic order);
    aliases ``"trivial"`` = ``(n)``, ``"sign"`` = ``(1^n)``, ``"standard"`` = ``(n-1,1)``.

    Examples:
        >>> s = symmetric(5)
        >>> s, [r.dim for r in s.irreps], s.irrep("standard").name
        (S5 (order 120, 7 classes, 7 irreps), [1, 1, 4, 4, 5, 5, 6], '(4,1)')
    """
    n = _positive(n, "symmetric")
    _check_size(f"S{n}", math.factorial(n))
    perms = lexicographic_permutations(n)
    gens = []
    if n >= 2:
        gens.append(_index_of(perms, [1, 0, *range(2, n)]))  # (0 1)
    if n >= 3:
        gens.append(_index_of(perms, [*range(1, n), 0]))  # (0 1 ... n-1)
    return _permutation_group(perms, f"S{n}", _symmetric_labeller, tuple(gens))


def _alternating_labeller(group: Group):
    m = group.family.permutations.shape[1]
    types = _cycle_types(group)
    if m <= 1:
        return torch.ones(1, 1, dtype=torch.complex128), [Label("(1)" if m else "()", ("trivial",))]
    entries = []  # (real_dim, partition, sign, row, label)
    for la in partitions(m):
        lc = conjugate(la)
        if lc > la:
            continue
        chi = torch.tensor([float(mn_character(la, mu)) for mu in types], dtype=torch.complex128)
        if lc != la:
            entries.append((dimension(la), la, 0, chi, Label(partition_name(la), _aliases(la, m))))
            continue
        hooks = diagonal_hooks(la)
        eps = -1 if ((m - len(hooks)) // 2) % 2 else 1
        root = torch.tensor(complex(eps * math.prod(hooks)), dtype=torch.complex128).sqrt()
        split = [k for k, mu in enumerate(types) if mu == tuple(sorted(hooks, reverse=True))]
        if len(split) != 2:
            raise GroupError(f"internal: cycle type {hooks} should give two classes of A{m}, found {len(split)}")
        half = dimension(la) // 2
        for sgn, suffix in ((1, "+"), (-1, "-")):
            row = chi / 2
            row[split[0]] = (eps + sgn * root) / 2
            row[split[1]] = (eps - sgn * root) / 2
            name = partition_name(la) + ("±" if eps == -1 else suffix)
            real_dim = 2 * half if eps == -1 else half
            entries.append((real_dim, la, -sgn, row, Label(name)))
    entries.sort(key=lambda e: (e[0], [-x for x in e[1]], e[2]))
    return torch.stack([e[3] for e in entries]), [e[4] for e in entries]


@functools.lru_cache(maxsize=16)
def alternating(n: int) -> Group:
    """A_n: the even permutations of ``0..n-1``, in the lexicographic order of :func:`symmetric` restricted.

    Irreps are named from the S_n partitions they restrict from: the larger (lexicographically) of ``λ, λ'``;
    a self-conjugate λ splits into ``"λ+"`` and ``"λ-"`` (or one real irrep ``"λ±"`` when the two are complex
    conjugates); see the table in :mod:`.families`. Ordered by (real dimension, partition reverse lexicographic,
    ``+`` first).

    Examples:
        >>> a = alternating(5)
        >>> [(r.name, r.dim) for r in a.irreps]
        [('(5)', 1), ('(3,1,1)+', 3), ('(3,1,1)-', 3), ('(4,1)', 4), ('(3,2)', 5)]
    """
    n = _positive(n, "alternating")
    _check_size(f"A{n}", max(1, math.factorial(n) // 2))
    perms = lexicographic_permutations(n)
    perms = perms[signs(perms) == 1]
    gens = []
    if n >= 3:
        gens.append(_index_of(perms, [1, 2, 0, *range(3, n)]))  # (0 1 2)
    if n >= 4:
        cycle = [*range(1, n), 0] if n % 2 else [0, *range(2, n), 1]  # (0 1 .. n-1) or (1 2 .. n-1)
        gens.append(_index_of(perms, cycle))
    return _permutation_group(perms, f"A{n}", _alternating_labeller, tuple(gens))


# ------------------------------------------------------------------ products and tables
def _product_labeller(g: Group, h: Group):
    def rows_info(grp: Group):
        info = {}
        for r in grp.irreps:
            for pos, row in enumerate(r.complex_rows):
                info[row] = (r, pos)
        return info

    def labeller(group: Group):
        reps = _reps(group)
        cg, ch = g.class_of[reps // h.order], h.class_of[reps % h.order]
        gi, hi = rows_info(g), rows_info(h)
        rows, labels = [], []
        for i in range(g.character_table.shape[0]):
            for j in range(h.character_table.shape[0]):
                rows.append(g.character_table[i, cg] * h.character_table[j, ch])
                (ra, pa), (rb, pb) = gi[i], hi[j]
                star = "*" if ra.frobenius_schur == 0 and rb.frobenius_schur == 0 and pa != pb else ""
                trivial = ("trivial",) if ra.index == 0 and rb.index == 0 else ()
                labels.append(Label(f"{ra.name}⊗{rb.name}{star}", trivial))
        return torch.stack(rows), labels

    return labeller


def direct_product(g: Group, h: Group) -> Group:
    """G × H: element ``(g_i, h_j)`` is index ``i·|H| + j``; ``(a, b) ∘ (c, d) = (a ∘ c, b ∘ d)``.

    Irreps are named ``"ρ⊗σ"`` from the factors' irreps (complex irreps of a product are products of complex
    irreps; the real irreps then follow from the Frobenius–Schur indicators). When both ρ and σ are of complex
    type (ν = 0), ``χ⊗ψ`` and ``χ⊗ψ̄`` give two real irreps, ``"ρ⊗σ"`` and ``"ρ⊗σ*"``.

    Examples:
        >>> from modadd_interp.groups import cyclic, symmetric
        >>> gh = direct_product(cyclic(2), symmetric(3))
        >>> gh, [r.name for r in gh.irreps][:3]
        (C2xS3 (order 12, 6 classes, 6 irreps), ['0⊗(3)', '0⊗(1,1,1)', '0⊗(2,1)'])
    """
    if not isinstance(g, Group) or not isinstance(h, Group):
        raise GroupError("direct_product takes two Group objects")
    _check_size(f"{g.name}x{h.name}", g.order * h.order)
    m = h.order
    table = (g.table[:, None, :, None] * m + h.table[None, :, None, :]).reshape(g.order * m, g.order * m)
    names = [f"({a},{b})" for a in g.element_names for b in h.element_names]
    gens = tuple(x * m + h.identity for x in g.generators) + tuple(g.identity * m + y for y in h.generators)
    info = FamilyInfo(labeller=_product_labeller(g, h), generators=gens)
    return Group(table, f"{g.name}x{h.name}", element_names=names, family=info)


def relabelled(family: Group, isomorphism, name: str | None = None) -> Group:
    """``family`` in another labelling: element ``i`` of the result is ``family``'s element ``isomorphism[i]``.

    The result's table is ``iso⁻¹[family.table[iso[i], iso[j]]]`` (e.g. a model's own token order, found by
    :func:`~modadd_interp.groups.identify`) and its irreps keep ``family``'s names, aliases and order: its closed-form
    characters are ``family``'s, read through the isomorphism.

    Examples:
        >>> s3 = symmetric(3)
        >>> iso = torch.tensor([0, 2, 1, 3, 5, 4])
        >>> g = relabelled(s3, iso, "S3'")
        >>> [r.name for r in g.irreps] == [r.name for r in s3.irreps], int(g.table[1, 1]) == int(iso[s3.table[2, 2]])
        (True, True)
    """
    iso = torch.as_tensor(isomorphism, dtype=torch.int64)
    inverse = torch.empty_like(iso)
    inverse[iso] = torch.arange(len(iso))
    table = inverse[family.table[iso[:, None], iso[None, :]]]
    info = family.family
    labeller = None
    if info.labeller is not None:
        ref, labels = info.labeller(family)  # on family's classes

        def labeller(group: Group):
            reps = torch.stack([c[0] for c in group.classes])
            return ref[:, family.class_of[iso[reps]]], labels

    relabelled_info = FamilyInfo(
        labeller=labeller,
        cyclic_log=info.cyclic_log[iso] if info.cyclic_log is not None else None,
        generators=tuple(int(inverse[g]) for g in info.generators) if info.generators is not None else None,
        permutations=info.permutations[iso] if info.permutations is not None else None)
    names = [family.element_names[int(i)] for i in iso]
    return Group(table, name or family.name, element_names=names, family=relabelled_info)


def from_table(table, name: str | None = None) -> Group:
    """Any group from its Cayley table; irreps named ``"χ1", "χ2", ...`` sorted by real dimension, then by the
    real character's values on the classes (larger first); ``χ1`` is the trivial irrep. Default name ``"G{n}"``.

    Examples:
        >>> from modadd_interp.groups import dihedral
        >>> g = from_table(dihedral(4).table)
        >>> g, [(r.name, r.real_dim) for r in g.irreps]
        (G8 (order 8, 5 classes, 5 irreps), [('χ1', 1), ('χ2', 1), ('χ3', 1), ('χ4', 1), ('χ5', 2)])
    """
    return Group(table, name)


def _positive(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GroupError(f"{what}(n) needs a positive integer n, got {n!r}")
    return n
