"""Prices: dated data apart from the specs (prices change monthly, specs never), and a user's sheet over them.

``hardware/prices/<id>.yaml`` holds, for one accelerator or system, rent offers ($ per device-hour, per term
and provider), purchase quotes (one device, the whole system, or a street price) and the whole system's power.
A user's price sheet (``--prices FILE``, ``pricing.sheet`` in a space) has the same entries under ``prices:``;
an entry there replaces the catalog's offers of the terms it gives and its quotes of the items it gives, and
keeps the rest (docs/recommend.md).

``device_prices`` reduces the entries behind one deployment target to what the cost formulas need, per device:
a rent price per term, the capital cost of a device with its share of the server around it, and its power
with the host's share; each as a point (the median of the offers) with a range (their spread, or a band by
confidence when there is one offer) and the ids and sources it came from.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from dse import units
from dse.catalog._files import read_document, suggestion, validate
from dse.catalog._hardware import HardwareSpec, SystemSpec
from dse.catalog._provenance import Confidence, Provenance
from dse.errors import InputError

Term = Literal["on-demand", "reserved-1y", "reserved-3y"]
TERMS: tuple[Term, ...] = ("on-demand", "reserved-1y", "reserved-3y")
ProviderKind = Literal["hyperscaler", "gpu-cloud", "marketplace", "user"]
Item = Literal["device", "system", "street"]
Segment = Literal["data-centre", "workstation", "consumer", "edge"]

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
_ID = r"^[a-z0-9][a-z0-9._-]*$"

CONFIDENCE_BAND: Mapping[Confidence, float] = {
    "verified": 0.05,
    "datasheet": 0.10,
    "derived": 0.15,
    "estimate": 0.25,
    "low": 0.35,
}
"""Half-width of the range given to a price known from one offer, as a share of it, by its confidence.

An assumption (docs/recommend.md): list prices read at the source move a few per cent between providers'
regions and months; third-party and estimated prices are known to a third or so (the catalog's own H100 rent
offers span 1.65-6.88 $/h)."""
USER_BAND = 0.0
"""A user's price (negotiated, known) has no range unless the sheet gives one (``range_usd``)."""


class _Range(BaseModel):
    model_config = _STRICT

    range_usd: list[PositiveFloat] | None = Field(
        default=None, min_length=2, max_length=2, description="[low, high] the price may take (robustness draws)"
    )

    def _check_range(self, value: float) -> None:
        if self.range_usd is not None and not self.range_usd[0] <= value <= self.range_usd[1]:
            raise ValueError(f"range_usd {list(self.range_usd)} must be [low, high] around the price {value:g}")


class RentOffer(_Range):
    """One rent offer: $ per device (GPU, TPU chip) per hour."""

    usd_per_device_hour: PositiveFloat
    term: Term
    provider: str = Field(min_length=1)
    provider_kind: ProviderKind
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _range(self) -> RentOffer:
        self._check_range(self.usd_per_device_hour)
        return self


class BuyQuote(_Range):
    """One purchase quote in $: one device, the whole system (node) of ``hardware/systems``, or a street price
    (a retail card, or a whole machine for an edge device)."""

    usd: PositiveFloat
    item: Item
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _range(self) -> BuyQuote:
        self._check_range(self.usd)
        return self


class PowerRecord(BaseModel):
    """The whole system's electrical power at maximum, host, NICs and fans included, in kW."""

    model_config = _STRICT

    system_kw: PositiveFloat
    provenance: Provenance | None = None


class PriceEntry(BaseModel):
    """Prices of one accelerator or system, as written in ``hardware/prices/<id>.yaml`` or a price sheet."""

    model_config = _STRICT

    id: str = Field(pattern=_ID)
    segment: Segment | None = None
    rent: list[RentOffer] = []
    buy: list[BuyQuote] = []
    power: PowerRecord | None = None
    note: str | None = None


class PriceSheet(BaseModel):
    """A user's price sheet: ``prices:`` a list of entries (the catalog's format, provenance optional)."""

    model_config = _STRICT

    prices: list[PriceEntry] = Field(min_length=1)


@functools.cache
def price_catalog() -> Mapping[str, PriceEntry]:
    """Every entry of ``hardware/prices``, by id. Catalog figures must each cite a source and a date."""
    from dse.catalog._registry import catalog_root, hardware_catalog, system_catalog

    folder = catalog_root() / "hardware" / "prices"
    known = {**hardware_catalog(), **system_catalog()}
    entries: dict[str, PriceEntry] = {}
    for path in sorted(folder.glob("*.yaml")):
        entry = validate(PriceEntry, read_document(path), source=str(path), path=path)
        if path.stem != entry.id:
            raise InputError(f"id {entry.id!r} must match the file name", source=str(path), field="id")
        if entry.id not in known:
            raise InputError(
                f"no accelerator or system {entry.id!r}{suggestion(entry.id, known)}", source=str(path), field="id"
            )
        if entry.segment is None:
            raise InputError("expected a segment (data-centre, workstation, consumer, edge)", source=str(path))
        for field, figures in (("rent", entry.rent), ("buy", entry.buy), ("power", [entry.power])):
            for i, figure in enumerate(f for f in figures if f is not None):
                if figure.provenance is None:
                    raise InputError(
                        "every catalog price needs a provenance (source, as_of, confidence)",
                        source=str(path),
                        field=f"{field}[{i}]" if field != "power" else field,
                    )
        entries[entry.id] = entry
    return entries


def read_price_sheet(path: str | Path) -> Mapping[str, PriceEntry]:
    """A user's price sheet by id; every id must be an accelerator or a system of the catalog."""
    from dse.catalog._registry import hardware_catalog, system_catalog

    source = str(path)
    sheet = validate(PriceSheet, read_document(Path(path)), source=source, path=Path(path))
    known = {**hardware_catalog(), **system_catalog()}
    entries: dict[str, PriceEntry] = {}
    for i, entry in enumerate(sheet.prices):
        if entry.id not in known:
            hint = suggestion(entry.id, known) or " (see `dse catalog hardware` and `dse catalog systems`)"
            raise InputError(
                f"unknown accelerator or system {entry.id!r}{hint}", source=source, field=f"prices[{i}].id"
            )
        if entry.id in entries:
            raise InputError(f"{entry.id!r} given twice", source=source, field=f"prices[{i}].id")
        if not (entry.rent or entry.buy or entry.power):
            raise InputError("expected at least one of rent, buy, power", source=source, field=f"prices[{i}]")
        entries[entry.id] = entry
    return entries


def overlay(catalog: Mapping[str, PriceEntry], sheet: Mapping[str, PriceEntry]) -> dict[str, PriceEntry]:
    """The catalog with a sheet over it: per id, the sheet's offers replace the catalog's of the same terms,
    its quotes those of the same items, its power the catalog's."""
    merged = dict(catalog)
    for key, mine in sheet.items():
        base = catalog.get(key)
        if base is None:
            merged[key] = mine
            continue
        terms, items = {o.term for o in mine.rent}, {q.item for q in mine.buy}
        merged[key] = base.model_copy(
            update={
                "rent": [o for o in base.rent if o.term not in terms] + list(mine.rent),
                "buy": [q for q in base.buy if q.item not in items] + list(mine.buy),
                "power": mine.power or base.power,
            }
        )
    return merged


def price_book(sheet: str | None = None) -> Mapping[str, PriceEntry]:
    """The catalog's prices, with the user's sheet (a path) over them when given (read again when the file
    changes)."""
    if sheet is None:
        return price_catalog()
    try:
        stat = Path(sheet).stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (0, 0)  # read_price_sheet reports the missing file
    return _book(sheet, version)


@functools.lru_cache(maxsize=16)
def _book(sheet: str, version: tuple[int, int]) -> Mapping[str, PriceEntry]:
    return overlay(price_catalog(), read_price_sheet(sheet))


def sheet_ids(sheet: str | None) -> frozenset[str]:
    """Ids a user's sheet gives prices for (they take precedence in ``device_prices``)."""
    if sheet is None:
        return frozenset()
    book, catalog = price_book(sheet), price_catalog()
    return frozenset(k for k, v in book.items() if catalog.get(k) is not v)


@dataclass(frozen=True)
class Price:
    """A price with its range and where it came from (ids of price entries, sources)."""

    value: float
    low: float
    high: float
    basis: str
    """How it was obtained, e.g. "median of 3 on-demand offers of h100-sxm" or "dgx-h100 system / 8"."""
    ids: tuple[str, ...]
    """Price entries it was read from: a sheet setting one of them moves it."""
    sources: tuple[str, ...]
    factor: float = 1.0
    """``value`` over the entry's own figure (e.g. 1/8 for a system quote shared by 8 devices)."""
    offers: tuple[float, ...] = ()
    """The offers it pools, lowest first, when there are several (and no sheet range): the prices a buyer may
    actually get."""

    def scaled(self, factor: float, basis: str) -> Price:
        """This price x ``factor`` (a share of a system, a server added), still moving with its entry."""
        return Price(
            self.value * factor,
            self.low * factor,
            self.high * factor,
            basis,
            self.ids,
            self.sources,
            self.factor * factor,
            tuple(o * factor for o in self.offers),
        )

    def at(self, position: Any) -> Any:
        """The price a draw at ``position`` (0..1) gives: one of the offers, each as likely (so the draws'
        median is the median offer), or, from one figure, a point of its range, uniformly; 0 and 1 are the
        low and high ends."""
        u = np.clip(np.asarray(position, dtype=float), 0.0, 1.0)
        if self.offers:
            index = np.minimum((u * len(self.offers)).astype(np.int64), len(self.offers) - 1)
            return np.asarray(self.offers)[index]
        return self.low + u * (self.high - self.low)


def _source(provenance: Provenance | None) -> str:
    if provenance is None:
        return "price sheet"
    return f"{provenance.source} ({provenance.as_of}, {provenance.confidence})"


def _band(value: float, provenance: Provenance | None, given: Sequence[float] | None) -> tuple[float, float]:
    if given is not None:
        return given[0], given[1]
    share = USER_BAND if provenance is None else CONFIDENCE_BAND[provenance.confidence]
    return value * (1.0 - share), value * (1.0 + share)


def _pooled(
    values: Sequence[tuple[float, Provenance | None, Sequence[float] | None]], key: str, what: str
) -> Price | None:
    """The median of several figures, their spread as the range (one figure: its band)."""
    if not values:
        return None
    points = [v for v, _, _ in values]
    if len(values) == 1:
        low, high = _band(*values[0])
    else:  # several offers: their spread (and any range a sheet gives)
        low = min(v if r is None else r[0] for v, _, r in values)
        high = max(v if r is None else r[1] for v, _, r in values)
    median = statistics.median(points)
    label = what if len(values) == 1 else f"median of {len(values)} {what}s"
    sources = tuple(dict.fromkeys(_source(p) for _, p, _ in values))
    offers = tuple(sorted(points)) if len(values) > 1 and all(r is None for _, _, r in values) else ()
    return Price(median, min(low, median), max(high, median), f"{label} of {key}", (key,), sources, 1.0, offers)


def rent_price(book: Mapping[str, PriceEntry], key: str, term: Term) -> Price | None:
    """$ per device-hour of ``key``'s offers of ``term`` (None: no such offer)."""
    entry = book.get(key)
    if entry is None:
        return None
    offers = [(o.usd_per_device_hour, o.provenance, o.range_usd) for o in entry.rent if o.term == term]
    return _pooled(offers, key, f"{term} offer")


def _quote(book: Mapping[str, PriceEntry], key: str, items: tuple[Item, ...]) -> Price | None:
    entry = book.get(key)
    if entry is None:
        return None
    quotes = [(q.usd, q.provenance, q.range_usd) for q in entry.buy if q.item in items]
    return _pooled(quotes, key, f"{'/'.join(items)} quote")


def _power(book: Mapping[str, PriceEntry], key: str) -> tuple[float, str] | None:
    entry = book.get(key)
    if entry is None or entry.power is None:
        return None
    return entry.power.system_kw * units.WATTS_PER_KW, _source(entry.power.provenance)


@dataclass(frozen=True)
class DevicePrices:
    """What the cost formulas need for one device of a deployment target (all per device)."""

    target: str
    accelerator: str
    rent: Mapping[Term, Price]
    """$ per device-hour per term offered."""
    capex: Price | None
    """$ of one device with its share of the system around it."""
    capex_unit: int
    """Devices bought together at that price: a system quote buys whole systems (its devices), else 1."""
    power_w: float | None
    """Electrical power of one device with its share of the host at maximum, in W."""
    power_basis: str
    segment: Segment | None

    def bought(self, devices: Any) -> Any:
        """Devices bought to have ``devices`` in service: whole systems at a system's quote (``capex_unit``)."""
        return np.ceil(np.asarray(devices, dtype=float) / self.capex_unit) * self.capex_unit


def device_prices(
    target: tuple[HardwareSpec, SystemSpec | None],
    book: Mapping[str, PriceEntry],
    systems: Mapping[str, SystemSpec],
    *,
    server_share: float,
    host_power_share: float,
    prefer: frozenset[str] = frozenset(),
) -> DevicePrices:
    """The per-device prices of a target (an accelerator, or a system with its accelerator).

    Each figure is taken from the first entry that has it, in this order (an entry of a user's sheet,
    ``prefer``, goes first: negotiated prices win):
    - rent per term: the accelerator's offers (clouds price a device-hour, whatever node it sits in), then the
      target system's; so every target of one accelerator rents at the same price;
    - capital cost: the target system's quote / its devices, a catalog system of the same accelerator's quote
      / its devices (a system quote buys whole systems: ``capex_unit``), the device's quote x (1 +
      ``server_share``); an edge device's street price is the whole machine;
    - power: the target system's power / its devices, a catalog system of the same accelerator's, TDP x (1 +
      ``host_power_share``); None without a TDP.
    A custom hardware file's own ``price`` (not in the price catalog) is used when nothing else is known."""
    hw, system = target
    key = system.id if system is not None else hw.id

    def ordered(ids: list[str]) -> list[str]:
        return [i for i in ids if i in prefer] + [i for i in ids if i not in prefer]

    rent: dict[Term, Price] = {}
    for term in TERMS:
        found = next((p for i in ordered([hw.id, key]) if (p := rent_price(book, i, term)) is not None), None)
        if found is not None:
            rent[term] = found
    if "on-demand" not in rent and hw.cloud_usd_per_hour is not None and hw.id not in book:
        value = hw.cloud_usd_per_hour
        rent["on-demand"] = Price(value, value, value, f"the price: field of {hw.id}", (hw.id,), ("hardware file",))
    nodes = {s.id: s for s in ([system] if system is not None else [])}
    nodes |= {s.id: s for s in systems.values() if s.accelerator.id == hw.id and s.id not in nodes}
    entry = book.get(hw.id)
    segment = entry.segment if entry is not None else None
    capex, unit = None, 1
    for i in ordered([*nodes, hw.id]):
        if i in nodes:
            quote = _quote(book, i, ("system",))
            if quote is not None:
                n = nodes[i].devices_per_node
                capex, unit = quote.scaled(1.0 / n, f"{quote.basis} / {n} devices"), n
                break
            continue
        whole = _quote(book, hw.id, ("street",)) if segment == "edge" else None
        part = _quote(book, hw.id, ("device", "street"))
        if whole is not None:
            capex = whole
            break
        if part is not None:
            capex = part.scaled(1.0 + server_share, f"{part.basis} x (1 + server share {server_share:g})")
            break
    if capex is None and hw.purchase_usd is not None and hw.id not in book:
        value = hw.purchase_usd * (1.0 + server_share)
        capex = Price(value, value, value, f"the price: field of {hw.id} x (1 + server share)", (hw.id,), ())
    power_w: float | None = None
    basis = "unknown (no system power and no TDP)"
    for i in ordered(list(nodes)):
        system_power = _power(book, i)
        if system_power is not None:
            watts, where = system_power
            n = nodes[i].devices_per_node
            power_w, basis = watts / n, f"{i} system power / {n}: {where}"
            break
    if power_w is None and hw.tdp_w is not None:
        share = 0.0 if segment == "edge" else host_power_share
        power_w, basis = hw.tdp_w * (1.0 + share), f"TDP {hw.tdp_w:g} W x (1 + host power share {share:g})"
    return DevicePrices(key, hw.id, rent, capex, unit, power_w, basis, segment)
