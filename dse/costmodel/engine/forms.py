"""Reading the physics' formulas as coefficients: symbols, polynomial forms, and their values per candidate.

Every operator formula in ``dse.costmodel.physics`` is a sum of products of the pass's quantities (R, a,
s_tp, ...) with model constants: ``2 R d_in d_out s_tp``, ``R a (d_in + d_out s_tp)``. Evaluated once with a
``Form`` standing for each quantity, a formula returns its coefficients over monomials (products of
symbols) instead of a number. The engine then scores N candidates as matrix products of those coefficients
with the monomials' values (``basis``), and no formula is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.operators import AttentionWork, Pass

ORDER = (
    "R",
    "B",
    "a",
    "x",
    "kv",
    "w",
    "w_attn",
    "e",
    "u",
    "keys",
    "pairs",
    "reads",
    "cached",
    "s_tp",
    "s_kv",
    "s_ew",
    "s_ef",
    "s_ea",
)
"""Symbols in the order monomials list them: products sharing a prefix (R a, then R a s_tp) share its value."""
FUSED, UNFUSED = "fused", "unfused"
"""Kernel masks (1 where a candidate uses fused attention kernels, or unfused ones): an operator that runs
only with one kind has its forms multiplied by that mask, so it costs nothing for the other candidates."""
_RANK = {name: i for i, name in enumerate((*ORDER, FUSED, UNFUSED))}


@dataclass(frozen=True, order=True)
class Symbol:
    """A per-candidate quantity: a ``Pass`` field (``group`` names the attention group of an ``AttentionWork``
    field), or a kernel mask."""

    rank: int
    name: str
    group: str = ""

    @classmethod
    def named(cls, name: str, group: str = "") -> Symbol:
        return cls(_RANK[name], name, group)

    def __repr__(self) -> str:
        return f"{self.name}[{self.group}]" if self.group else self.name


Monomial = tuple[Symbol, ...]
"""A product of symbols, sorted (the empty product is 1)."""


class Form:
    """Σ coefficient x monomial: what a formula is, once its quantities are symbols. Supports + and x with
    numbers and other forms, as the physics' formulas use them."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, float]) -> None:
        self.terms = {m: c for m, c in terms.items() if c != 0.0}

    @classmethod
    def of(cls, value: Any) -> Form:
        """A form of a form, or of a constant number (the empty monomial)."""
        return value if isinstance(value, Form) else cls({(): float(value)})

    @classmethod
    def symbol(cls, name: str, group: str = "") -> Form:
        return cls({(Symbol.named(name, group),): 1.0})

    def __add__(self, other: Any) -> Form:
        terms = dict(self.terms)
        for monomial, coefficient in Form.of(other).terms.items():
            terms[monomial] = terms.get(monomial, 0.0) + coefficient
        return Form(terms)

    __radd__ = __add__

    def __mul__(self, other: Any) -> Form:
        if not isinstance(other, Form):
            return Form({m: c * other for m, c in self.terms.items()})
        terms: dict[Monomial, float] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                monomial = tuple(sorted(m1 + m2))
                terms[monomial] = terms.get(monomial, 0.0) + c1 * c2
        return Form(terms)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return " + ".join(f"{c:g}·{'·'.join(map(repr, m)) or '1'}" for m, c in self.terms.items()) or "0"


def symbolic_pass(arch: Architecture, *, decode: bool, mixed: bool = False) -> Pass[Form]:
    """A ``Pass`` of symbols. In decode, T = 1 makes R the batch (one symbol), K/V are read at the cache
    format, and a kernel's pairs and reads are its keys: every attention formula is then linear in the keys,
    which the engine's decode lines rely on. ``mixed``: a prefill-shaped pass that also reads the cache (a
    continuous-batching step's decoding sequences, ``AttentionWork.cached``); a prefill of its own reads
    none, and its table has no such terms to evaluate."""
    work = {}
    for group, _, _ in arch.attention_groups:
        keys = Form.symbol("keys", group)
        cached = Form.symbol("cached", group) if mixed else 0.0
        work[group] = (
            AttentionWork(keys, keys, keys)
            if decode
            else AttentionWork(keys, Form.symbol("pairs", group), Form.symbol("reads", group), cached)
        )
    batch, a, kv = Form.symbol("B"), Form.symbol("a"), Form.symbol("kv")
    quantities: dict[str, Any] = {f.name: Form.symbol(f.name) for f in fields(Pass) if f.name in ORDER}
    x = kv if decode else Form.symbol("x")  # prefill attention's operand width (passes.ATTENTION_BITS at least)
    quantities |= {"R": batch if decode else Form.symbol("R"), "B": batch, "a": a, "kv": kv, "x": x}
    return Pass(**quantities, attention=work, decode=decode)


def symbol_values(p: Pass[Any], fused: NDArray[np.float64]) -> dict[Symbol, Any]:
    """The value of every symbol for candidates whose pass quantities are ``p`` (arrays or scalars) and whose
    kernels are ``fused`` (0/1)."""
    values: dict[Symbol, Any] = {Symbol.named(name): getattr(p, name) for name in ORDER if hasattr(p, name)}
    for group, work in p.attention.items():
        values |= {Symbol.named(f.name, group): getattr(work, f.name) for f in fields(AttentionWork)}
    return values | {Symbol.named(FUSED): fused, Symbol.named(UNFUSED): 1.0 - fused}


@dataclass(frozen=True)
class Basis:
    """How to compute the values of ``monomials`` (every column of a table, then the prefixes they are built
    from): each is its prefix times its last symbol, so a product several monomials share is computed once."""

    monomials: tuple[Monomial, ...]
    columns: int
    """The first ``columns`` monomials are the table's columns; the rest only prefixes of them."""
    steps: tuple[tuple[int, int | Symbol | None, Symbol | None], ...]
    """Per row, shortest first: (row, its prefix's row or its one symbol, its last symbol); (row, None, None)
    is the empty product, (row, None, symbol) a symbol alone."""

    @classmethod
    def of(cls, columns: Sequence[Monomial]) -> Basis:
        rows = list(columns)
        index = {m: i for i, m in enumerate(rows)}
        for monomial in columns:
            for end in range(len(monomial) - 1, 1, -1):  # a prefix of two symbols or more needs a row
                if monomial[:end] not in index:
                    index[monomial[:end]] = len(rows)
                    rows.append(monomial[:end])
        steps: list[tuple[int, int | Symbol | None, Symbol | None]] = []
        for row in sorted(range(len(rows)), key=lambda i: len(rows[i])):
            m = rows[row]
            if len(m) < 2:
                steps.append((row, None, m[0] if m else None))
            else:
                steps.append((row, index.get(m[:-1], m[0]) if len(m) == 2 else index[m[:-1]], m[-1]))
        return cls(tuple(rows), len(columns), tuple(steps))

    def values(self, symbols: Mapping[Symbol, Any], size: int) -> NDArray[np.float64]:
        """(columns x size) values of the table's columns (the prefixes computed on the way)."""
        out = np.empty((len(self.monomials), size))
        for row, left, right in self.steps:
            if right is None:
                out[row] = 1.0
            elif left is None:
                out[row] = symbols[right]
            else:
                np.multiply(out[left] if isinstance(left, int) else symbols[left], symbols[right], out=out[row])
        return out[: self.columns]


def coefficients(forms: Sequence[Any], columns: Mapping[Monomial, int], width: int) -> NDArray[np.float64]:
    """(len(forms) x width) coefficients of ``forms`` over the columns."""
    out = np.zeros((len(forms), width))
    for i, form in enumerate(forms):
        for monomial, coefficient in Form.of(form).terms.items():
            out[i, columns[monomial]] += coefficient
    return out
