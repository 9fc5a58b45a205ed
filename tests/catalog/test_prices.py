"""The price catalog: coverage, provenance, how figures pool into a price, and a user's sheet over them."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from dse.catalog import (
    device_prices,
    hardware_catalog,
    load_target,
    price_book,
    price_catalog,
    read_price_sheet,
    system_catalog,
)
from dse.catalog._prices import CONFIDENCE_BAND, overlay
from dse.errors import InputError

SHARES = {"server_share": 0.23, "host_power_share": 0.82}


def _prices(ref: str, sheet: str | None = None):  # type: ignore[no-untyped-def]
    return device_prices(load_target(ref), price_book(sheet), system_catalog(), **SHARES)


def test_every_accelerator_and_system_has_a_price_file_with_sources() -> None:
    catalog = price_catalog()
    assert set(catalog) == set(hardware_catalog()) | set(system_catalog())
    for entry in catalog.values():
        for figure in [*entry.rent, *entry.buy, *([entry.power] if entry.power else [])]:
            assert figure.provenance is not None and figure.provenance.source and figure.provenance.as_of


def test_every_data_centre_target_has_a_rent_or_a_purchase_price() -> None:
    catalog = price_catalog()
    missing = []
    for ref in [*hardware_catalog(), *system_catalog()]:
        hw, _ = load_target(ref)
        if catalog[hw.id].segment != "data-centre":
            continue
        p = _prices(ref)
        if "on-demand" not in p.rent and p.capex is None:
            missing.append(ref)
    assert missing == []


def test_several_offers_pool_to_their_median_and_spread() -> None:
    entry = price_catalog()["h100-sxm"]
    offers = [o.usd_per_device_hour for o in entry.rent if o.term == "on-demand"]
    price = _prices("h100-sxm").rent["on-demand"]
    assert len(offers) >= 2
    assert price.value == statistics.median(offers)
    assert (price.low, price.high) == (min(offers), max(offers))
    assert price.ids == ("h100-sxm",)


def test_one_offer_gets_a_band_by_its_confidence() -> None:
    entry = price_catalog()["gaudi2"]
    (offer,) = [o for o in entry.rent if o.term == "on-demand"]
    assert offer.provenance is not None
    band = CONFIDENCE_BAND[offer.provenance.confidence]
    price = _prices("gaudi2").rent["on-demand"]
    assert price.low == pytest.approx(offer.usd_per_device_hour * (1 - band))
    assert price.high == pytest.approx(offer.usd_per_device_hour * (1 + band))


def test_systems_rent_at_their_accelerators_price() -> None:
    assert _prices("dgx-h100").rent["on-demand"] == _prices("h100-sxm").rent["on-demand"]


def test_capital_cost_and_power_per_device() -> None:
    dgx = price_catalog()["dgx-h100"]
    quotes = [q.usd for q in dgx.buy if q.item == "system"]
    p = _prices("dgx-h100")
    assert p.capex is not None and p.capex.value == pytest.approx(statistics.median(quotes) / 8)
    assert p.capex.ids == ("dgx-h100",) and p.capex.factor == pytest.approx(1 / 8)
    assert dgx.power is not None and p.power_w == pytest.approx(dgx.power.system_kw * 1e3 / 8)
    bare = _prices("h100-sxm")  # no system of its own: the catalog's DGX H100 share
    assert bare.capex is not None and bare.capex.value == p.capex.value and bare.power_w == p.power_w
    l40s = _prices("l40s")  # no system quote: the device quote plus the server share; TDP plus the host's
    device = [q.usd for q in price_catalog()["l40s"].buy if q.item == "device"]
    assert l40s.capex is not None and l40s.capex.value == pytest.approx(statistics.median(device) * 1.23)
    assert l40s.power_w == pytest.approx(hardware_catalog()["l40s"].tdp_w * 1.82)  # type: ignore[operator]


def _sheet(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return str(path)


def test_a_sheet_replaces_the_terms_and_items_it_gives(tmp_path: Path) -> None:
    sheet = _sheet(
        tmp_path,
        "prices:\n  - id: h100-sxm\n    rent:\n      - {usd_per_device_hour: 2.0, term: on-demand, provider: us, "
        "provider_kind: user}\n",
    )
    p = _prices("h100-sxm", sheet)
    assert p.rent["on-demand"].value == 2.0 and p.rent["on-demand"].low == p.rent["on-demand"].high == 2.0
    assert p.capex == _prices("h100-sxm").capex  # buy quotes kept
    merged = overlay(price_catalog(), read_price_sheet(sheet))
    assert [o.term for o in merged["h100-sxm"].rent].count("on-demand") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prices:\n  - id: h100-sxn\n    buy: [{usd: 1, item: device}]\n", ["prices[0].id", "h100-sxm"]),
        (
            "prices:\n  - id: h100-sxm\n    rent: [{term: on-demand, provider: x, provider_kind: user}]\n",
            ["usd_per_device_hour", "Field required"],
        ),
        ("prices:\n  - id: h100-sxm\n    buy: [{usd: -5, item: device}]\n", ["usd", "greater than 0"]),
        ("prices:\n  - id: h100-sxm\n", ["prices[0]", "at least one of rent, buy, power"]),
        ("prices:\n  - id: h100-sxm\n    buy: [{usd: 10, item: device, range_usd: [20, 30]}]\n", ["range_usd"]),
        ("prices: []\n", ["prices"]),
    ],
)
def test_a_bad_sheet_names_the_file_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    sheet = _sheet(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_price_sheet(sheet)
    message = str(info.value)
    assert sheet in message
    for part in expected:
        assert part in message


def test_a_sheet_range_is_read_and_a_sheet_entry_wins_at_any_level(tmp_path: Path) -> None:
    sheet = _sheet(
        tmp_path,
        "prices:\n"
        "  - id: h100-sxm\n"
        "    rent:\n"
        "      - {usd_per_device_hour: 1.6, term: on-demand, provider: us, provider_kind: user,\n"
        "         range_usd: [1.5, 1.8]}\n"
        "    buy:\n      - {usd: 25000, item: device}\n"
        "  - id: hgx-b200\n"
        "    rent:\n      - {usd_per_device_hour: 1.0, term: on-demand, provider: us, provider_kind: user}\n",
    )
    prefer = frozenset({"h100-sxm", "hgx-b200"})
    h100 = device_prices(load_target("dgx-h100"), price_book(sheet), system_catalog(), **SHARES, prefer=prefer)
    rent = h100.rent["on-demand"]
    assert (rent.value, rent.low, rent.high, rent.offers) == (1.6, 1.5, 1.8, ())
    assert h100.capex is not None and h100.capex.value == pytest.approx(25000 * 1.23)  # not the DGX quote
    assert h100.capex_unit == 1
    b200 = device_prices(load_target("hgx-b200"), price_book(sheet), system_catalog(), **SHARES, prefer=prefer)
    assert b200.rent["on-demand"].value == 1.0  # the system's own rent, given by the user, over b200's offers
    assert _prices("hgx-b200").rent["on-demand"].value != 1.0
    from dse.catalog import sheet_ids

    assert sheet_ids(sheet) == prefer and sheet_ids(None) == frozenset()


def test_draws_take_each_offer_as_often() -> None:
    price = _prices("h100-sxm").rent["on-demand"]
    offers = sorted(o.usd_per_device_hour for o in price_catalog()["h100-sxm"].rent if o.term == "on-demand")
    assert list(price.offers) == offers
    import numpy as np

    drawn = price.at(np.linspace(0.0, 1.0, 12_001))
    assert float(np.median(drawn)) == pytest.approx(statistics.median(offers), rel=0.05)
    assert price.at(0.0) == min(offers) and price.at(1.0) == max(offers)
