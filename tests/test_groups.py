"""modadd_interp.groups: tables, characters, real irreps, projectors, representations, bases, identification.

Tolerances. Everything is float64 (eps = 2.2e-16) on groups of order <= 720. The character values come from
eigenvectors of a normal matrix, accurate to about eps * n_classes / (relative eigenvalue gap) ~ 1e-13 at worst
here (measured: <= 6e-14); orthogonality sums of <= 11..61 such terms then err by ~1e-13. TOL = 1e-10 leaves a
factor >= 100 for other CPUs, BLAS libraries and thread counts, and is the bound the brief asks for. Integer
results (indices, degrees, indicators) are compared exactly.
"""

from __future__ import annotations

import doctest
import importlib
import math
import pkgutil

import pytest
import torch

import modadd_interp.groups as G
from modadd_interp import fourier
from modadd_interp.errors import GroupError, ModAddError
from modadd_interp.groups.characters import orthogonality_errors

TOL = 1e-10
F64 = torch.float64


def relabelled(table: torch.Tensor, new_label: torch.Tensor) -> torch.Tensor:
    """The same group with element ``x`` renamed ``new_label[x]``."""
    out = torch.empty_like(table)
    out[new_label[:, None], new_label[None, :]] = new_label[table]
    return out


def quaternion_table() -> torch.Tensor:
    """Q8 = {±1, ±i, ±j, ±k}; element 2u + s is (-1)^s · unit u, units 1, i, j, k."""
    unit = {(0, 0): (0, 1), (0, 1): (1, 1), (0, 2): (2, 1), (0, 3): (3, 1), (1, 0): (1, 1), (1, 1): (0, -1),
            (1, 2): (3, 1), (1, 3): (2, -1), (2, 0): (2, 1), (2, 1): (3, -1), (2, 2): (0, -1), (2, 3): (1, 1),
            (3, 0): (3, 1), (3, 1): (2, 1), (3, 2): (1, -1), (3, 3): (0, -1)}  # fmt: skip
    table = torch.empty(8, 8, dtype=torch.int64)
    for x in range(8):
        for y in range(8):
            u, sign = unit[(x // 2, y // 2)]
            negative = (x % 2 + y % 2 + (sign < 0)) % 2
            table[x, y] = 2 * u + negative
    return table


DIMS = {
    "S3": [1, 1, 2],
    "S4": [1, 1, 2, 3, 3],
    "S5": [1, 1, 4, 4, 5, 5, 6],
    "S6": [1, 1, 5, 5, 5, 5, 9, 9, 10, 10, 16],
    "A4": [1, 1, 1, 3],  # complex dims; the pair of 1-d ones is one real irrep of real_dim 2
    "A5": [1, 3, 3, 4, 5],
}
GROUPS = ["S3", "S4", "S5", "S6", "A4", "A5", "D5", "D6", "D7", "D8", "D59", "D61", "C1", "C7", "C8", "C113",
          "U7", "U113", "C2xS3", "C3xC3", "C4xD5"]  # fmt: skip


@pytest.mark.parametrize("name", GROUPS)
def test_character_table(name):
    g = G.by_name(name)
    chars = g.character_table
    assert chars.dtype == torch.complex128 and chars.shape == (g.n_classes, g.n_classes)
    degrees = chars[:, 0].real.round().long()
    assert int((degrees**2).sum()) == g.order
    rows, cols = orthogonality_errors(chars, g.class_sizes.to(F64))
    assert rows < TOL and cols < TOL
    if name in DIMS:
        assert sorted(degrees.tolist()) == DIMS[name]
    assert sum(r.isotypic_dim for r in g.irreps) == g.order
    assert g.irreps[0].aliases[:1] == ("trivial",) or g.irreps[0].name == "trivial"
    assert torch.allclose(g.irreps[0].character, torch.ones(g.n_classes, dtype=F64))
    for r in g.irreps:  # the real character is the trace of the real representation: χ, χ + χ̄ or 2χ
        psi = sum(chars[i] for i in r.complex_rows)
        expected = (psi if r.frobenius_schur != -1 else 2 * psi).real
        assert torch.equal(r.character, expected) and r.character[0] == r.real_dim


def test_irrep_names_and_orders():
    assert [(r.name, r.dim) for r in G.symmetric(5).irreps] == [
        ("(5)", 1), ("(1,1,1,1,1)", 1), ("(4,1)", 4), ("(2,1,1,1)", 4), ("(3,2)", 5), ("(2,2,1)", 5), ("(3,1,1)", 6)
    ]  # fmt: skip
    assert [r.dim for r in G.symmetric(4).irreps] == [1, 1, 2, 3, 3]
    s5 = G.symmetric(5)
    assert s5.irrep("standard").name == "(4,1)" and s5.irrep("sign").name == "(1,1,1,1,1)"
    assert [(r.name, r.dim, r.real_dim) for r in G.alternating(5).irreps] == [
        ("(5)", 1, 1), ("(3,1,1)+", 3, 3), ("(3,1,1)-", 3, 3), ("(4,1)", 4, 4), ("(3,2)", 5, 5)
    ]  # fmt: skip
    assert [(r.name, r.real_dim, r.frobenius_schur) for r in G.alternating(4).irreps] == [
        ("(4)", 1, 1), ("(2,2)±", 2, 0), ("(3,1)", 3, 1)
    ]  # fmt: skip
    assert [r.name for r in G.dihedral(59).irreps] == ["trivial", "sign", *map(str, range(1, 30))]
    assert [r.name for r in G.dihedral(6).irreps] == ["trivial", "sign", "3+", "3-", "1", "2"]
    assert [(r.name, r.real_dim, r.freq) for r in G.cyclic(8).irreps] == [
        ("0", 1, 0), ("1", 2, 1), ("2", 2, 2), ("3", 2, 3), ("4", 1, 4)
    ]  # fmt: skip
    assert [r.freq for r in G.dihedral(8).irreps] == [0, 0, 4, 4, 1, 2, 3]
    assert [r.name for r in G.direct_product(G.cyclic(3), G.cyclic(3)).irreps] == ["0⊗0", "0⊗1", "1⊗0", "1⊗1", "1⊗1*"]
    with pytest.raises(GroupError, match="no irrep 'nope'.*standard"):
        s5.irrep("nope")
    assert s5.irrep(torch.tensor(2)) is s5.irrep(2) is s5.irreps[2] is s5.irrep(s5.irreps[2])
    with pytest.raises(GroupError, match="7 irreps, got index 7"):
        s5.irrep(7)
    with pytest.raises(GroupError, match="not an irrep of S5"):
        s5.irrep(G.symmetric(4).irreps[0])


def test_closed_form_values():
    """A few character values checked by hand, on top of the matching every family constructor does."""
    s5 = G.symmetric(5)
    transposition = s5.element_names.index("(0 1)")
    assert abs(float(s5.chi("standard")[transposition]) - 2) < TOL  # 3 fixed points - 1
    a5 = G.alternating(5)
    five_cycles = [k for k, c in enumerate(a5.classes) if a5.element_orders[c[0]] == 5]
    plus = a5.irrep("(3,1,1)+").character
    assert abs(float(plus[five_cycles[0]]) - (1 + math.sqrt(5)) / 2) < TOL
    assert abs(float(plus[five_cycles[1]]) - (1 - math.sqrt(5)) / 2) < TOL
    n = 12
    c = G.cyclic(n)
    reps = torch.stack([cl[0] for cl in c.classes]).to(F64)
    first = c.character_table[1]  # χ_1 = exp(2πi x / n) on each class {x}
    assert c.irreps[1].complex_rows == (1, 2) and c.irreps[1].freq == 1
    assert (first - torch.exp(2j * math.pi * reps / n)).abs().max() < TOL


def test_frobenius_schur():
    assert all(r.frobenius_schur == 1 for n in (3, 4, 5) for r in G.symmetric(n).irreps)
    assert [r.frobenius_schur for r in G.alternating(4).irreps] == [1, 0, 1]
    assert [r.frobenius_schur for r in G.cyclic(7).irreps] == [1, 0, 0, 0]
    q8 = G.from_table(quaternion_table(), name="Q8")
    assert [(r.name, r.dim, r.real_dim, r.frobenius_schur) for r in q8.irreps] == [
        ("χ1", 1, 1, 1), ("χ2", 1, 1, 1), ("χ3", 1, 1, 1), ("χ4", 1, 1, 1), ("χ5", 2, 4, -1)
    ]  # fmt: skip
    quaternionic = q8.irreps[-1]
    assert quaternionic.multiplicity == 1 and quaternionic.isotypic_dim == 4


# ------------------------------------------------------------------ element orders
def test_dihedral_matches_chughtai_convention():
    """Element a is r^a, n + a is r^a s; product rule of Chughtai et al.'s DihedralGroup.compose."""
    n = 7
    d = G.dihedral(n)
    for x in range(2 * n):
        for y in range(2 * n):
            (xr, xs), (yr, ys) = (x % n, x // n), (y % n, y // n)
            zr = (xr + yr) % n if xs == 0 else (xr - yr) % n
            assert int(d.table[x, y]) == zr + n * ((xs + ys) % 2)
    assert d.element_names[:2] == ("e", "r") and d.element_names[n : n + 3] == ("s", "rs", "r^2s")
    assert G.dihedral(59).order == 118


def test_symmetric_order_and_composition():
    s = G.symmetric(4)
    perms = s.family.permutations
    assert perms.tolist() == sorted(perms.tolist()) and s.identity == 0
    for x in range(24):
        for y in range(24):
            assert perms[s.table[x, y]].tolist() == perms[y][perms[x]].tolist()  # x first, then y
    a = G.alternating(4)
    assert a.order == 12 and a.family.permutations.tolist() == [p for p in perms.tolist() if p in
                                                              a.family.permutations.tolist()]  # fmt: skip


def test_sympy_relabelling_is_an_isomorphism():
    combinatorics = pytest.importorskip("sympy.combinatorics.named_groups")
    for n in (3, 4):
        elements = list(combinatorics.SymmetricGroup(n).generate())
        index = {tuple(p.array_form): k for k, p in enumerate(elements)}
        theirs = torch.tensor([[index[tuple((p * q).array_form)] for q in elements] for p in elements])
        sigma = G.sympy_relabelling(n)
        assert sorted(sigma.tolist()) == list(range(math.factorial(n)))
        ours = G.symmetric(n).table
        assert torch.equal(ours[sigma[:, None], sigma[None, :]], sigma[theirs])


def test_multiplicative_is_cyclic_in_discrete_log():
    u = G.multiplicative(13)
    assert u.name == "U13" and u.element_names[0] == "1" and u.order == 12
    assert torch.equal(u.table, (torch.arange(1, 13)[:, None] * torch.arange(1, 13)[None, :]) % 13 - 1)
    log = u.family.cyclic_log  # smallest primitive root mod 13 is 2
    assert [int(log[v - 1]) for v in (1, 2, 4, 8, 3)] == [0, 1, 2, 3, 4]
    assert torch.equal(u.basis(), fourier.fourier_basis(12)[:, log])


# ------------------------------------------------------------------ functions on G
@pytest.mark.parametrize("n", [7, 8, 300])
def test_cyclic_basis_and_transform_are_the_fourier_ones(n):
    c = G.cyclic(n)
    assert torch.equal(c.basis(), fourier.fourier_basis(n))
    f = torch.randn(3, n, 5, dtype=F64, generator=torch.Generator().manual_seed(n))
    assert torch.equal(c.transform(f, dim=1), fourier.fourier_transform(f, dim=1))
    assert torch.allclose(c.inverse_transform(c.transform(f, 1), 1), f, atol=TOL, rtol=0)
    if n < 100:
        assert c.irrep_of_row.tolist() == fourier.row_freqs(n).tolist()
        energy = c.energy(f, dim=1)
        coeffs = fourier.fourier_transform(f, dim=1)
        assert torch.allclose(energy[1:], fourier.frequency_energy(coeffs, dim=1), atol=TOL, rtol=0)


PROJ = ["S4", "A4", "D6", "C8", "C3xC3", "U7"]


@pytest.mark.parametrize("name", [*PROJ, "Q8"])
def test_projectors(name):
    g = G.from_table(quaternion_table(), "Q8") if name == "Q8" else G.by_name(name)
    ps = [g.projector(r) for r in g.irreps]
    eye = torch.eye(g.order, dtype=F64)
    assert (sum(ps) - eye).abs().max() < TOL
    for i, p in enumerate(ps):
        assert (p @ p - p).abs().max() < TOL and (p - p.T).abs().max() < TOL
        assert abs(float(p.trace()) - g.irreps[i].isotypic_dim) < TOL
        for q in ps[i + 1 :]:
            assert (p @ q).abs().max() < TOL
    f = torch.randn(g.order, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    energy = g.energy(f)
    assert energy.shape == (len(g.irreps), 4)
    assert torch.allclose(energy.sum(0), (f**2).sum(0), atol=TOL, rtol=0)
    coeffs = g.transform(f)
    by_rows = torch.zeros_like(energy).index_add_(0, g.irrep_of_row, coeffs**2)
    assert torch.allclose(energy, by_rows, atol=TOL, rtol=0)
    assert torch.equal(g.project(f, []), torch.zeros_like(f))
    both = g.project(f, [0, len(g.irreps) - 1])
    assert torch.allclose(both, (ps[0] + ps[-1]) @ f, atol=TOL, rtol=0)
    assert torch.allclose(g.project(f.T, g.irreps[0], dim=1), f.mean(0, keepdim=True).expand_as(f).T, atol=TOL)


# Q8xS3 has a quaternionic irrep of multiplicity 2 (real_dim 8), C3xS3 a complex one of dim 2 (real_dim 4)
REPS = ["S3", "S4", "S5", "A4", "A5", "D5", "D6", "C7", "C8", "C2xS3", "C3xC3", "Q8", "G8", "Q8xS3", "C3xS3"]


def _group(name: str) -> G.Group:
    if name == "Q8":
        return G.from_table(quaternion_table(), "Q8")
    if name == "Q8xS3":
        return G.direct_product(G.from_table(quaternion_table(), "Q8"), G.symmetric(3))
    if name == "G8":  # a cyclic group given as a bare table: the general (non-Fourier) path
        return G.from_table(G.cyclic(8).table)
    return G.by_name(name)


@pytest.mark.parametrize("name", REPS)
def test_representations_are_orthogonal_homomorphisms(name):
    g = _group(name)
    for r in g.irreps:
        rep = g.representation(r)
        assert rep.shape == (g.order, r.real_dim, r.real_dim) and rep.dtype == F64
        eye = torch.eye(r.real_dim, dtype=F64)
        assert (rep.transpose(1, 2) @ rep - eye).abs().max() < TOL
        products = rep[:, None] @ rep[None, :]  # [g, h] -> R(g) R(h)
        assert (products - rep[g.table]).abs().max() < TOL
        assert (rep.diagonal(dim1=1, dim2=2).sum(-1) - g.chi(r)).abs().max() < TOL
        assert (rep[g.identity] - eye).abs().max() < TOL


def test_representations_do_not_depend_on_lapack_choices():
    """The matrices depend on the seeded right-action element only: not on the thread count, nor on how the
    eigensolver rotates a basis of the chosen irreducible subspace (the basis is made canonical)."""
    from modadd_interp.groups import representations

    threads = torch.get_num_threads()
    try:
        mats = []
        for k in (1, 2):
            torch.set_num_threads(k)
            g = G.from_table(G.symmetric(4).table)  # a fresh group: nothing cached
            mats.append([g.representation(r) for r in g.irreps])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*mats, strict=True):
        assert (a - b).abs().max() < TOL
    q = torch.linalg.qr(torch.randn(24, 3, dtype=F64, generator=torch.Generator().manual_seed(2))).Q
    rotation = torch.linalg.qr(torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(3))).Q
    assert (representations._canonical(q, 3) - representations._canonical(q @ rotation, 3)).abs().max() < TOL


@pytest.mark.parametrize("name", ["S4", "A4", "D5", "Q8", "C3xC3", "G8", "U7", "Q8xS3", "C3xS3"])
def test_basis(name):
    g = _group(name)
    b = g.basis()
    assert b.shape == (g.order, g.order) and b.dtype == F64
    assert (b @ b.T - torch.eye(g.order, dtype=F64)).abs().max() < TOL
    rows = g.irrep_of_row
    assert rows.tolist() == sorted(rows.tolist())  # grouped, in irreps order
    for r in g.irreps:
        block = b[rows == r.index]
        assert len(block) == r.isotypic_dim
        assert (block @ g.projector(r) - block).abs().max() < TOL  # each row lies in its isotypic component
    if all(r.frobenius_schur == 1 for r in g.irreps) and g.family.cyclic_log is None:
        for r in g.irreps:  # real type: the rows are exactly sqrt(d/|G|) R(g)_ij, column by column
            rep = g.representation(r).permute(2, 1, 0).reshape(r.real_dim**2, g.order)
            assert (b[rows == r.index] - rep * math.sqrt(r.dim / g.order)).abs().max() < TOL
    f = torch.randn(2, g.order, dtype=F64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(g.inverse_transform(g.transform(f, 1), 1), f, atol=TOL, rtol=0)


@pytest.mark.parametrize("name", ["S4", "A5", "D5"])
def test_trace_of_product_is_the_character_of_the_product(name):
    g = G.by_name(name)
    x, y, z = torch.meshgrid(*(torch.arange(g.order),) * 3, indexing="ij")
    for r in g.irreps:
        rep = g.representation(r)
        direct = torch.einsum("xab,ybc,zac->xyz", rep, rep, rep)  # tr R(x) R(y) R(z)ᵀ
        assert (g.trace_of_product(r, x, y, z) - direct).abs().max() < TOL


# ------------------------------------------------------------------ identification
@pytest.mark.parametrize(
    ("name", "expected"),
    [("S4", "S4"), ("S5", "S5"), ("D7", "D7"), ("A5", "A5"), ("C12", "C12"), ("U13", "C12"), ("S3", "S3"),
     ("D2", "D2"), ("A4", "A4"), ("C1", "C1")],
)  # fmt: skip
def test_identify_recovers_relabelled_groups(name, expected):
    source = G.by_name(name)
    new_label = torch.randperm(source.order, generator=torch.Generator().manual_seed(7))
    table = relabelled(source.table, new_label)
    found = G.identify(table)
    assert found.group.name == expected
    iso = found.isomorphism
    assert sorted(iso.tolist()) == list(range(source.order))
    assert torch.equal(found.group.table[iso[:, None], iso[None, :]], iso[table])  # a verified isomorphism
    assert f"isomorphic to {expected}" in found.sentence and f"order {source.order}" in found.sentence


def test_identify_s6_and_fallback():
    s6 = G.symmetric(6)
    table = relabelled(s6.table, torch.randperm(720, generator=torch.Generator().manual_seed(3)))
    found = G.identify(table)
    assert found.group is s6 and "generators of orders 2 and 6" in found.sentence
    iso = found.isomorphism
    assert torch.equal(s6.table[iso[:, None], iso[None, :]], iso[table])
    q8 = G.identify(quaternion_table())
    assert q8.family is None and q8.group.name == "G8" and "no built-in family" in q8.sentence
    assert len(q8.group.irreps) == 5 and torch.equal(q8.isomorphism, torch.arange(8))
    c2c2c2 = G.identify(G.by_name("C2xC2xC2").table)
    assert c2c2c2.family is None


def _bad_tables():
    z6 = G.cyclic(6).table.clone()
    z6[1, 1], z6[1, 4], z6[4, 1], z6[4, 4] = 5, 2, 2, 5  # an intercalate swap: still a loop with inverses
    return {
        "square": (torch.zeros(2, 3, dtype=torch.int64), "square"),
        "integers": (torch.zeros(2, 2), "integer"),
        "range": (torch.tensor([[0, 1], [1, 2]]), "indices 0..1"),
        "latin": (torch.tensor([[0, 1], [1, 1]]), "Latin square"),
        "identity": (torch.tensor([[(i - j) % 3 for j in range(3)] for i in range(3)]), "no identity"),
        "inverses": (
            torch.tensor([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 3, 4, 0, 1], [3, 4, 1, 2, 0], [4, 2, 0, 1, 3]]),
            "two-sided inverse",
        ),
        "associative": (z6, "not associative"),
        "empty": (torch.zeros(0, 0, dtype=torch.int64), "at least one"),
    }


@pytest.mark.parametrize("case", list(_bad_tables()))
def test_non_groups_are_refused(case):
    table, message = _bad_tables()[case]
    with pytest.raises(GroupError, match=message):
        G.identify(table)
    with pytest.raises(ModAddError):
        G.from_table(table)


def test_light_test_catches_every_non_associative_loop_of_order_5():
    """Compare Light's test with the O(n³) definition on all loops of order 5 (reduced Latin squares)."""
    import itertools

    n, found = 5, 0
    perms = list(itertools.permutations(range(n)))

    def rows(i, acc):
        if i == n:
            yield torch.tensor(acc)
            return
        for p in perms:
            if p[0] == i and all(p[j] != r[j] for r in acc for j in range(n)):
                yield from rows(i + 1, [*acc, list(p)])

    ar = torch.arange(n)
    for t in rows(1, [list(range(n))]):
        associative = bool((t[t[:, :, None], ar[None, None, :]] == t[ar[:, None, None], t[None, :, :]]).all())
        try:
            G.check_table(t)
            accepted = True
        except GroupError:
            accepted = False
        two_sided = bool(((t == 0).int().argmax(1) == (t == 0).int().argmax(0)).all())
        assert accepted == (associative and two_sided)
        found += 1
    assert found == 56


# ------------------------------------------------------------------ names
def test_by_name():
    assert G.by_name("C113").order == 113 and G.by_name("D59").order == 118
    assert G.by_name("S5") is G.symmetric(5) and G.by_name("s5") is G.symmetric(5)
    assert G.by_name("A5").order == 60 and G.by_name("U113") is G.by_name("Z113*")
    assert G.by_name("C2xS4").order == 48 and G.by_name("C2xS4").name == "C2xS4"
    assert repr(G.by_name("S5")) == "S5 (order 120, 7 classes, 7 irreps)"
    for bad, message in [("Q8", "accepted forms"), ("S", "accepted forms"), ("U8", "prime"), ("", "non-empty"),
                         ("C0", "positive"), ("S9", "limited to order"), ("C2x", "accepted forms")]:  # fmt: skip
        with pytest.raises(GroupError, match=message):
            G.by_name(bad)


def test_group_basics():
    d = G.dihedral(4)
    assert d.identity == 0 and d.inverse.tolist() == [0, 3, 2, 1, 4, 5, 6, 7]
    assert d.element_orders.tolist() == [1, 4, 2, 4, 2, 2, 2, 2]
    assert [c.tolist() for c in d.classes] == [[0], [2], [4, 6], [5, 7], [1, 3]]
    assert d.class_of.tolist() == [0, 4, 1, 4, 2, 3, 2, 3] and not d.abelian and G.cyclic(5).abelian
    assert torch.equal(d.compose(torch.arange(8), d.inverse), torch.zeros(8, dtype=torch.int64))
    with pytest.raises(GroupError, match="size 8 along dim 0"):
        d.energy(torch.ones(7))


def test_layering():
    """Pure math at the bottom: module-level imports are torch, numpy, the standard library, errors, fourier and
    the package's own modules; sympy only inside sympy_relabelling."""
    import ast
    import sys
    from pathlib import Path

    allowed = {"torch", "numpy", "__future__"} | set(sys.stdlib_module_names)
    for path in Path(G.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    continue
                if node.level == 2 and node.module is None:  # from .. import fourier
                    names = [".." + a.name for a in node.names]
                else:
                    names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                if name.startswith(".."):
                    assert name in ("..errors", "..fourier"), f"{path.name} imports {name}"
                elif name.split(".")[0] == "sympy":
                    assert path.name == "permutations.py"
                else:
                    assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = [getattr(n, "module", None) or "" for n in top] + [a.name for n in top for a in n.names]
        assert not any(m.split(".")[0] == "sympy" for m in modules), f"{path.name} imports sympy at module level"


def test_doctests():
    """The docstring examples of every module in modadd_interp.groups run (also: pytest --doctest-modules)."""
    failures = 0
    for info in pkgutil.iter_modules(G.__path__):
        module = importlib.import_module(f"modadd_interp.groups.{info.name}")
        failures += doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed
    failures += doctest.testmod(G).failed
    assert failures == 0
