"""Error bars: the interval around a prediction that measurements are expected to fall in.

A fitted profile stores, per quantity, the p10/p50/p90 of measured / predicted over rows held out of its fit
(split-conformal, ``dse calibrate``): a prediction x of a target has the interval [p10 x, p90 x]. Hardware a
fitted family profile covers gets that held-out spread (measured or not: rows of an accelerator the fit has
seen would give a narrower, optimistic spread); hardware no fitted profile covers gets the generic profile's
residuals on every measurement (none were fitted to it), widened to at least the fitted families' held-out
spread: hardware no family measured is not known better than a family's unmeasured device. A profile with
no interval record (``ideal``, a hand-written one) gives none.
"""

from __future__ import annotations

import math

import numpy as np

from dse.catalog import GENERIC, QUANTILES, QUANTITIES, EfficiencyProfile, load_profile, profile_catalog
from dse.scoring._build import ProfileChoice, Target, target_profiles

Ratios = tuple[float, float, float]
NO_RATIOS: Ratios = (math.nan, math.nan, math.nan)


def interval_ratios(profile: EfficiencyProfile) -> dict[str, Ratios]:
    """measured / predicted at ``QUANTILES`` per quantity for a target scored with ``profile``; NaN where
    the profile has no interval. Quantities a fitted family was not measured on take the generic profile's."""
    own = profile.record.interval
    if own is None:
        return dict.fromkeys(QUANTITIES, NO_RATIOS)
    generic = load_profile(GENERIC).record.interval
    layers = [own.held_out, generic.held_out if generic else {}]
    out = {}
    for q in QUANTITIES:
        found = next((layer[q] for layer in layers if q in layer), None)
        out[q] = tuple(found) if found is not None else NO_RATIOS  # type: ignore[assignment]
    if profile.id == GENERIC:  # no family measured: not known better than a fitted family's unmeasured device
        for fitted in profile_catalog().values():
            if fitted.record.fit is not None and fitted.record.interval is not None:
                for q, (lo, mid, hi) in fitted.record.interval.held_out.items():
                    a, b, c = out[q]
                    out[q] = (min(a, lo), b, max(c, hi)) if math.isfinite(a) else (lo, mid, hi)
    return out  # type: ignore[return-value]


def ratio_at(ratios: Ratios, confidence: float) -> float:
    """measured / predicted that ``confidence`` of measurements stay under: interpolated in log space between
    the stored quantiles (0.5 <= confidence <= 0.9)."""
    return float(np.exp(np.interp(confidence, QUANTILES, np.log(np.asarray(ratios)))))


def intervals(values: dict[str, float], ratios: dict[str, Ratios]) -> dict[str, list[float] | None]:
    """[p10, p90] of each predicted quantity in ``values`` (None where no interval is known)."""
    out: dict[str, list[float] | None] = {}
    for q in QUANTITIES:
        lo, _, hi = ratios[q]
        x = values[q]
        out[q] = [lo * x, hi * x] if math.isfinite(lo) and math.isfinite(hi) and math.isfinite(x) else None
    return out


def target_ratios(
    hardware: list[Target], profile: ProfileChoice, engine: str | None = None
) -> list[tuple[bool, dict[str, Ratios]]]:
    """Per target: whether its accelerator was measured in the fit of the profile it is scored with, and
    ``interval_ratios`` of that profile."""
    out = []
    for (hw, _), prof in zip(hardware, target_profiles(hardware, profile, engine), strict=True):
        out.append((hw.id in prof.calibrated_on, interval_ratios(prof)))
    return out


def ratio_table(per_target: list[tuple[bool, dict[str, Ratios]]]) -> dict[str, np.ndarray]:
    """``target_ratios``' ratios as one (targets x 3) array per quantity, to index by hardware code."""
    return {
        q: np.asarray([r[q] for _, r in per_target], dtype=np.float64).reshape(-1, len(QUANTILES)) for q in QUANTITIES
    }
