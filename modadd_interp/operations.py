"""The operations ``a op b mod p`` and the group coordinates in which each one is addition.

Every supported operation is addition in a cyclic group once its operands are relabelled
(DESIGN: "the basis is a property of the operation"):

* ``add``: ``c = a + b`` in ``Z/p``; coordinates ``x = a``, ``y = b``, ``z = c``.
* ``sub``: ``c = a - b``; with ``y = -b`` the answer is ``z = x + y`` (b reflected).
* ``mul``: ``c = a * b`` on the non-zero residues, the multiplicative group ``(Z/p)*``, cyclic of
  order ``n = p - 1`` for prime ``p``: with a primitive root ``g`` (computed by
  :func:`primitive_root`), ``x = log_g a``, ``y = log_g b``, ``z = log_g c`` and ``z = x + y mod n``.
* ``div``: ``c = a * b^-1`` (``b != 0``); ``y = -log_g b``.

In coordinates every operation is ``z = x + y (mod n)``, so one Fourier analysis (the basis of
``Z/n``, :func:`modadd_interp.fourier.fourier_basis`) reads all of them: the clock's readout
``cos(w_k (x + y - z))`` is ``cos(w_k(a + b - c))`` for ``add``, ``cos(w_k(a - b - c))`` for ``sub``
and ``cos(w_k(log a + log b - log c))`` for ``mul``. Inputs outside the group (``mul``/``div`` with a
zero operand: ``0 * b = 0``) are part of the task but not of the group; the analysis reports them
separately (docs/concepts.md, "Operations").

**Any finite group** is an operation too (:func:`group_operation`): its tokens are the group's elements in the
group's documented order (:mod:`modadd_interp.groups`), ``c = a ∘ b`` by the Cayley table, and the coordinates
are the elements themselves (``z = x ∘ y``). ``get_operation("S5")`` (any name :func:`modadd_interp.groups.by_name`
reads but a cyclic one: a cyclic group's task is ``add``) gives it.

Examples:
    >>> coords = OPERATIONS["mul"].coordinates(7)       # (Z/7)* has order 6, primitive root 3
    >>> coords.n, coords.a_tokens.tolist()
    (6, [1, 3, 2, 6, 4, 5])
    >>> x, y = 2, 3                                      # a = 3^2 = 2, b = 3^3 = 6, a*b = 12 = 5 mod 7
    >>> int(coords.c_tokens[(x + y) % coords.n])
    5
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable

import torch

from .errors import GroupError, TaskMismatchError
from .groups import Group, by_name, cyclic


def is_prime(p: int) -> bool:
    """True if ``p`` is a prime (trial division; ``p`` is small)."""
    if p < 2:
        return False
    return all(p % d for d in range(2, int(p**0.5) + 1))


def _prime_factors(n: int) -> list[int]:
    factors, d = [], 2
    while d * d <= n:
        if n % d == 0:
            factors.append(d)
            while n % d == 0:
                n //= d
        d += 1
    return factors + ([n] if n > 1 else [])


@functools.lru_cache(maxsize=64)
def primitive_root(p: int) -> int:
    """The smallest generator ``g`` of ``(Z/p)*`` for a prime ``p``.

    ``g`` generates the group iff ``g^((p-1)/q) != 1`` for every prime ``q`` dividing ``p - 1``.

    Examples:
        >>> primitive_root(7), primitive_root(113)
        (3, 3)
    """
    if not is_prime(p):
        raise TaskMismatchError(f"p={p} is not prime: (Z/p)* is not a cyclic group, so mul/div need a prime p.")
    if p == 2:
        return 1
    factors = _prime_factors(p - 1)
    for g in range(2, p):
        if all(pow(g, (p - 1) // q, p) != 1 for q in factors):
            return g
    raise AssertionError("unreachable: every prime has a primitive root")  # pragma: no cover


@dataclasses.dataclass(frozen=True, eq=False)
class GroupCoordinates:
    """An operation's cyclic group ``Z/n`` and the residue at each coordinate.

    Attributes:
        p: the modulus.
        n: the group's order (``p`` for add/sub, ``p - 1`` for mul/div).
        a_tokens, b_tokens, c_tokens: ``[n]`` int64, the residue ``a``, ``b`` and answer ``c`` at
            coordinates ``x``, ``y`` and ``z``; ``a_tokens[x] op b_tokens[y] = c_tokens[(x + y) % n]``.
        coordinate: how a residue maps to its coordinate, in words (``"a"``, ``"log_3 a (a != 0)"``).
        readout: the clock's readout in the operation's words.
        axes: the names of the coordinates ``(x, y, z)`` in the operation's words, e.g. ``("a", "-b", "c")``.
        table: ``[n, n]`` the Cayley table of the coordinates' group (``z = table[x, y]``), or None for the cyclic
            group ``Z/n`` (``z = x + y mod n``).
    """

    p: int
    n: int
    a_tokens: torch.Tensor
    b_tokens: torch.Tensor
    c_tokens: torch.Tensor
    coordinate: str
    readout: str
    axes: tuple[str, str, str] = ("a", "b", "c")
    table: torch.Tensor | None = None
    group_of_table: Group | None = dataclasses.field(default=None, repr=False)

    @property
    def cyclic(self) -> bool:
        """True when the coordinates' group is ``Z/n`` (the four modular operations): the Fourier analysis reads it."""
        return self.table is None

    def compose(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``z = x ∘ y`` in coordinates: ``(x + y) mod n`` for ``Z/n``, else the Cayley table."""
        return (x + y) % self.n if self.table is None else self.table[x, y]

    @functools.cached_property
    def group(self) -> Group:
        """The coordinates' group (:class:`modadd_interp.groups.Group`): ``C{n}`` for the four modular operations."""
        return self.group_of_table if self.group_of_table is not None else cyclic(self.n)

    @functools.cached_property
    def outside(self) -> torch.Tensor:
        """``[p - n]`` int64 residues outside the group (``[0]`` for mul/div, empty for add/sub)."""
        inside = torch.zeros(self.p, dtype=torch.bool)
        inside[self.c_tokens] = True
        return torch.nonzero(~inside).flatten()

    @functools.cached_property
    def answer_order(self) -> torch.Tensor:
        """``[p]`` int64: the answers in coordinate order ``c_tokens``, then those outside the group.

        Columns ``0..n-1`` of ``logits[:, answer_order]`` are the group's answers by coordinate ``z``.
        """
        return torch.cat([self.c_tokens, self.outside])

    @property
    def is_identity(self) -> bool:
        """True when coordinates are residues (``add``): the analysis grid is the token grid."""
        r = torch.arange(self.p)
        return self.n == self.p and all(torch.equal(t, r) for t in (self.a_tokens, self.b_tokens, self.c_tokens))


@dataclasses.dataclass(frozen=True)
class Operation:
    """One binary operation mod p: its answers, where it is defined, and its group coordinates.

    Attributes:
        name: ``"add"``, ``"sub"``, ``"mul"`` or ``"div"``.
        formula: e.g. ``"(a + b) mod p"``.
        multiplicative: coordinates are discrete logs (the group is ``(Z/p)*``).
        b_sign: ``+1`` or ``-1``: ``y`` is ``+log b`` / ``+b`` or its negative.
    """

    name: str
    formula: str
    multiplicative: bool
    b_sign: int
    combine: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor] = dataclasses.field(repr=False)

    def defined(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[n]`` bool: where ``a op b`` is defined (everywhere but ``b = 0`` for a division)."""
        return b != 0 if self.multiplicative and self.b_sign < 0 else torch.ones_like(a, dtype=torch.bool)

    def answer(self, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
        """``[n]`` int64 answers ``a op b mod p``; ``-1`` where undefined.

        Examples:
            >>> OPERATIONS["div"].answer(torch.tensor([6, 3]), torch.tensor([3, 0]), 7).tolist()
            [2, -1]
        """
        a, b = a.long(), b.long()
        return torch.where(self.defined(a, b), self.combine(a, b, p), torch.full_like(a, -1))

    def check_modulus(self, p: int) -> None:
        """Raise unless this operation is a group operation mod ``p`` (mul/div need a prime)."""
        if self.multiplicative and not is_prime(p):
            raise TaskMismatchError(
                f"op {self.name!r} needs a prime p (the non-zero residues form a cyclic group only then); "
                f"p={p} is not prime."
            )

    def coordinates(self, p: int) -> GroupCoordinates:
        """The group coordinates of this operation mod ``p`` (see the module docstring)."""
        return _coordinates(self, p)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupOperation(Operation):
    """Composition in a finite group: tokens are its elements, ``c = a ∘ b`` (:func:`group_operation`).

    Attributes:
        group: the :class:`~modadd_interp.groups.Group`.
    """

    group: Group | None = dataclasses.field(default=None, repr=False)

    def check_modulus(self, p: int) -> None:
        if p != self.group.order:
            raise TaskMismatchError(f"op {self.name!r} is composition in a group of order {self.group.order}: its "
                                    f"task has p = {self.group.order} tokens, not {p}.")

    def coordinates(self, p: int) -> GroupCoordinates:
        self.check_modulus(p)
        r = torch.arange(p)
        return GroupCoordinates(p, p, r, r, r, "x", "χ_ρ(x y z⁻¹)", ("x", "y", "z"), self.group.table,
                                self.group)


_REGISTERED: dict[str, Group] = {}
"""Groups known by a name that :func:`modadd_interp.groups.by_name` does not read (:func:`operation_of_group`)."""


def operation_of_group(group: Group) -> str:
    """The op name of ``group``'s composition, in ``group``'s own element order: its family name when
    :func:`~modadd_interp.groups.by_name` builds exactly this table, else a name registered for this process
    (``"S5~3fa9c2"``: a relabelled S5, or ``"G24~..."``: a group given only by its table).

    Examples:
        >>> from modadd_interp.groups import symmetric, relabelled
        >>> operation_of_group(symmetric(3))
        'S3'
        >>> name = operation_of_group(relabelled(symmetric(3), torch.tensor([0, 2, 1, 3, 5, 4])))
        >>> name.startswith("S3~"), get_operation(name).group.order
        (True, 6)
    """
    try:
        if torch.equal(by_name(group.name).table, group.table):
            return group.name
    except GroupError:
        pass
    digest = hashlib.sha256(group.table.numpy().tobytes()).hexdigest()[:6]
    name = f"{group.name.split('~')[0]}~{digest}"
    _REGISTERED.setdefault(name, group)
    return name


@functools.lru_cache(maxsize=32)
def group_operation(name: str) -> GroupOperation:
    """The composition of the group called ``name`` (:func:`modadd_interp.groups.by_name`: ``S5``, ``A5``,
    ``D59``, ...) as an operation. A cyclic group is refused: its task is ``add`` (``ModularTask(p=n)``).

    Examples:
        >>> op = group_operation("S3")
        >>> op.formula, op.answer(torch.tensor([1]), torch.tensor([2]), 6).tolist()
        ('x ∘ y in S3', [3])
    """
    group = _REGISTERED[name] if name in _REGISTERED else by_name(name)
    if group.name.startswith("C") and group.name[1:].isdigit() and name not in _REGISTERED:
        raise TaskMismatchError(f"{name} is the cyclic group of order {group.order}: its task is op 'add' with p = "
                                f"{group.order}.")
    return GroupOperation(name if name in _REGISTERED else group.name, f"x ∘ y in {group.name}", False, 1,
                          functools.partial(_compose_by_table, group.table), group)


def _compose_by_table(table: torch.Tensor, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:  # noqa: ARG001
    """``a ∘ b`` by the Cayley table (``p``, the group's order, is implied)."""
    return table[a, b]


@functools.lru_cache(maxsize=32)
def _coordinates(op: Operation, p: int) -> GroupCoordinates:
    op.check_modulus(p)
    if op.multiplicative:
        n = p - 1
        g = primitive_root(p)
        powers = torch.tensor([pow(g, x, p) for x in range(n)])
        neg = torch.tensor([(-x) % n for x in range(n)]) if n else torch.zeros(0, dtype=torch.long)
        b_tokens = powers if op.b_sign > 0 else powers[neg]
        symbol = "+" if op.b_sign > 0 else "-"
        return GroupCoordinates(p, n, powers, b_tokens, powers, f"log_{g} a (a != 0)",
                                f"cos(w(log a {symbol} log b - log c))",
                                (f"log_{g} a", f"{'' if op.b_sign > 0 else '-'}log_{g} b", f"log_{g} c"))
    r = torch.arange(p)
    b_tokens = r if op.b_sign > 0 else (-r) % p
    symbol = "+" if op.b_sign > 0 else "-"
    return GroupCoordinates(p, p, r, b_tokens, r, "a", f"cos(w(a {symbol} b - c))",
                            ("a", "b" if op.b_sign > 0 else "-b", "c"))


def _inverse(b: torch.Tensor, p: int) -> torch.Tensor:
    """``b^-1 mod p`` (0 where ``b = 0``), for prime ``p``."""
    table = torch.tensor([pow(v, -1, p) if v else 0 for v in range(p)])
    return table[b % p]


OPERATIONS: dict[str, Operation] = {
    op.name: op for op in (
        Operation("add", "(a + b) mod p", False, 1, lambda a, b, p: (a + b) % p),
        Operation("sub", "(a - b) mod p", False, -1, lambda a, b, p: (a - b) % p),
        Operation("mul", "(a * b) mod p", True, 1, lambda a, b, p: (a * b) % p),
        Operation("div", "(a / b) mod p", True, -1, lambda a, b, p: (a * _inverse(b, p)) % p),
    )
}
"""Every supported operation by name."""


def group_task(name: str) -> tuple[int, str]:
    """``(p, op)`` of the task composing in the group called ``name``: ``(n, "add")`` for a cyclic ``C{n}``, else
    ``(|G|, name)`` (the CLI's ``--group``).

    Examples:
        >>> group_task("C113"), group_task("S5"), group_task("D59")
        ((113, 'add'), (120, 'S5'), (118, 'D59'))
    """
    group = by_name(name)
    if group.name.startswith("C") and group.name[1:].isdigit():
        return group.order, "add"
    return group.order, group_operation(name).name


def get_operation(name: str) -> Operation:
    """The :class:`Operation` called ``name`` (one of :data:`OPERATIONS`, or a group's name: :func:`group_operation`),
    or a clear error naming the supported ones."""
    if name in OPERATIONS:
        return OPERATIONS[name]
    try:
        return group_operation(name)
    except (GroupError, TypeError, ValueError) as error:
        raise TaskMismatchError(f"op {name!r} is not supported; supported ops: {', '.join(OPERATIONS)}, or a group's "
                                f"name ({error})") from None
