"""Real irreducible representations, assembled from the complex character table.

A complex irreducible character χ of degree ``d`` with Frobenius–Schur indicator ν gives:

* ν = +1 (real type): one real irrep of real dimension ``d``; real character ``χ``;
* ν = 0 (complex type): χ and its conjugate χ̄ together give ONE real irrep of real dimension ``2d``
  (as the cyclic frequency ``k`` pairs ``e^{±2πikx/n}`` into cos and sin); real character ``χ + χ̄ = 2 Re χ``;
* ν = −1 (quaternionic type): one real irrep of real dimension ``2d``; real character ``2χ``.

The real character stored on :class:`Irrep` is always the trace of the real orthogonal representation
(:meth:`~modadd_interp.groups.Group.representation`). In the real regular representation the real irrep
appears :attr:`Irrep.multiplicity` times (``d`` for ν = 1 and ν = 0, ``d/2`` for ν = −1), so its isotypic
component has dimension ``d²``, ``2d²`` and ``d²`` respectively; the dimensions add up to ``|G|``.

Examples:
    >>> from modadd_interp.groups import cyclic
    >>> [ (r.name, r.real_dim, r.frobenius_schur) for r in cyclic(4).irreps ]
    [('0', 1, 1), ('1', 2, 0), ('2', 1, 1)]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..errors import GroupError

__all__ = ["Irrep", "Label", "assemble", "match_labels"]

MATCH_TOL = 1e-6  # computed vs closed-form characters; distinct characters differ by >= sqrt(2) somewhere


@dataclass(frozen=True, eq=False)
class Irrep:
    """A real irreducible representation of a :class:`~modadd_interp.groups.Group`.

    Attributes:
        index: position in ``group.irreps``.
        name: e.g. ``"(4,1)"``, ``"3"`` (a frequency), ``"sign"``, ``"χ2"``.
        dim: complex dimension ``d`` of the underlying complex irreducible character.
        real_dim: dimension ``r`` of the real representation (``d``, or ``2d`` for ν = 0 and ν = −1).
        frobenius_schur: ν ∈ {1, 0, −1}.
        character: ``[n_classes]`` float64, the real character (trace of the real representation) on each class.
        complex_rows: rows of ``group.character_table`` that make it up (two for ν = 0: χ first, then χ̄).
        aliases: other accepted names (``"trivial"``, ``"sign"``, ``"standard"``).
        freq: the frequency for cyclic, multiplicative and dihedral irreps, else None.
    """

    index: int
    name: str
    dim: int
    real_dim: int
    frobenius_schur: int
    character: torch.Tensor
    complex_rows: tuple[int, ...]
    aliases: tuple[str, ...] = ()
    freq: int | None = None

    @property
    def multiplicity(self) -> int:
        """How many times the real irrep occurs in the real regular representation."""
        return self.dim // 2 if self.frobenius_schur == -1 else self.dim

    @property
    def isotypic_dim(self) -> int:
        """Dimension of its isotypic component of functions on G: ``real_dim * multiplicity``."""
        return self.real_dim * self.multiplicity

    def __repr__(self) -> str:
        return f"Irrep({self.name!r}, dim={self.dim}, real_dim={self.real_dim}, ν={self.frobenius_schur:+d})"


@dataclass(frozen=True)
class Label:
    """A family's name for one complex character: the real irrep it belongs to (rows of a ν = 0 pair share
    ``name``), its aliases and frequency."""

    name: str
    aliases: tuple[str, ...] = ()
    freq: int | None = None


def _real_character(chars: torch.Tensor, rows: tuple[int, ...], nu: int) -> torch.Tensor:
    if nu == 0:
        return (chars[rows[0]] + chars[rows[1]]).real.clone()
    return (chars[rows[0]].real * (2.0 if nu == -1 else 1.0)).clone()


def match_labels(chars: torch.Tensor, ref: torch.Tensor, sizes: torch.Tensor) -> list[int]:
    """For each computed row of ``chars``, the row of the closed-form ``ref`` it equals (a bijection).

    Candidates by the largest inner product ``Σ_k |C_k| χ_k ψ̄_k / |G|`` (1 for equal characters, 0 otherwise),
    then every value checked within ``MATCH_TOL``. ``O(r²)`` memory.
    """
    if ref.shape[0] != chars.shape[0]:
        raise GroupError(f"the family gives {ref.shape[0]} characters for {chars.shape[0]} classes")
    w = (sizes / sizes.sum()).to(chars.dtype)
    best = ((chars * w[None, :]) @ ref.conj().T).real.argmax(1)
    worst = float((chars - ref[best]).abs().max()) if len(best) else 0.0
    if worst > MATCH_TOL or len(set(best.tolist())) != len(best):
        raise GroupError(
            f"the characters computed from the table do not match the family's closed-form characters "
            f"(largest deviation {worst:.2e}); the table is not this family's"
        )
    return best.tolist()


def _conj_partner(chars: torch.Tensor, i: int) -> int:
    dist = (chars - chars[i].conj()[None, :]).abs().amax(-1)
    j = int(dist.argmin())
    if float(dist[j]) > MATCH_TOL:
        raise GroupError(f"numerical failure: the conjugate of complex character {i} is not in the table")
    return j


def _conjugates(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether the character rows ``a`` and ``b`` are complex conjugates (to :data:`MATCH_TOL`); O(classes), where
    :func:`_conj_partner` searches every row."""
    return float((a.conj() - b).abs().max()) <= MATCH_TOL


def _first_imag_positive(row: torch.Tensor) -> bool:
    nonreal = (row.imag.abs() > MATCH_TOL).nonzero()
    return bool(row.imag[nonreal[0, 0]] > 0) if len(nonreal) else True


def _compare_values(a: torch.Tensor, b: torch.Tensor) -> int:
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if abs(x - y) > MATCH_TOL:
            return -1 if x > y else 1  # larger values first
    return 0


def assemble(
    chars: torch.Tensor, nu: torch.Tensor, labels: list[Label] | None
) -> tuple[torch.Tensor, tuple[Irrep, ...]]:
    """Order the complex rows and build the real irreps.

    With family ``labels`` (one per row of ``chars``, already in the family's order), real irreps come in order
    of first appearance. Without (``from_table``): sorted by ``real_dim``, then by the real character's values on
    the classes in class order, larger first (compared with tolerance 1e-6), and named ``χ1, χ2, ...``; ``χ1`` is
    the trivial irrep (alias ``"trivial"``). In a ν = 0 pair, the row whose first non-real value has positive
    imaginary part comes first.

    Returns:
        (character table with rows reordered, irreps).
    """
    r = chars.shape[0]
    groups: list[tuple[tuple[int, ...], Label | None]] = []
    if labels is not None:
        by_name: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            by_name.setdefault(lab.name, []).append(i)
        for name, rows in by_name.items():
            kinds = {int(nu[i]) for i in rows}
            ok = (len(rows) == 1 and kinds != {0}) or (
                len(rows) == 2 and kinds == {0} and _conjugates(chars[rows[0]], chars[rows[1]])
            )
            if not ok:
                raise GroupError(f"internal: the family's irrep {name!r} is not one real irrep (rows {rows})")
            groups.append((tuple(rows), labels[rows[0]]))
    else:
        seen: set[int] = set()
        for i in range(r):
            if i in seen:
                continue
            if int(nu[i]) == 0:
                j = _conj_partner(chars, i)
                pair = (i, j) if _first_imag_positive(chars[i]) else (j, i)
                seen.update(pair)
                groups.append((pair, None))
            else:
                seen.add(i)
                groups.append(((i,), None))

        def key(a, b):
            ra, rb = (_real_character(chars, g[0], int(nu[g[0][0]])) for g in (a, b))
            if ra[0] != rb[0]:
                return -1 if ra[0] < rb[0] else 1
            return _compare_values(ra, rb)

        groups.sort(key=functools.cmp_to_key(key))
    order = [i for rows, _ in groups for i in rows]
    new_chars = chars[order].clone()
    position = {old: new for new, old in enumerate(order)}
    irreps = []
    for k, (rows, lab) in enumerate(groups):
        v = int(nu[rows[0]])
        d = int(round(float(chars[rows[0], 0].real)))
        new_rows = tuple(position[i] for i in rows)
        name = lab.name if lab else f"χ{k + 1}"
        aliases = lab.aliases if lab else (("trivial",) if k == 0 else ())
        irreps.append(
            Irrep(
                index=k,
                name=name,
                dim=d,
                real_dim=d if v == 1 else 2 * d,
                frobenius_schur=v,
                character=_real_character(new_chars, new_rows, v),
                complex_rows=new_rows,
                aliases=aliases,
                freq=lab.freq if lab else None,
            )
        )
    return new_chars, tuple(irreps)
