"""Refit every fitted efficiency profile in ``hardware/profiles`` to ``calibration/measurements.csv``.

A fitted profile's file says which accelerators it covers (``hardware``), which engine's rows it is fitted to
(``engine``) and whether it is chosen without naming that engine (``automatic``); this script keeps those and
refits the efficiencies and intervals (``dse calibrate`` with the file as its own base). The generic
``default`` profile is not fitted (its figures are documented round values); it gets the interval of its
residuals on every row, which stands in for hardware no fitted profile covers.

    python calibration/refit.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dse.calibrate import SCORED_SCENARIOS, calibrate, read_measurements, residual_interval
from dse.catalog import GENERIC, profile_catalog

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "hardware" / "profiles"
HEADER = (
    "# Written by calibration/refit.py from calibration/measurements.csv: edit id, description, hardware, engine,\n"
    "# automatic and the unfitted fields by hand, then re-run it to refit the rest.\n"
)


def main() -> None:
    rows = [
        m for m in read_measurements(ROOT / "calibration" / "measurements.csv") if m.record.scenario in SCORED_SCENARIOS
    ]
    for profile in profile_catalog().values():
        if profile.record.fit is None:
            continue
        record = profile.record
        fit = calibrate(rows, base=record.id, profile_id=record.id)
        kept = {"description": record.description}  # hand-written
        text = yaml.safe_dump(fit.record.model_copy(update=kept).model_dump(exclude_none=True), sort_keys=False)
        (PROFILES / f"{record.id}.yaml").write_text(HEADER + text, encoding="utf-8")
        held = f"{fit.held_out:.1%}" if fit.held_out is not None else "n/a"
        print(f"{record.id}: {fit.rows} rows, median |error| {fit.after:.1%} fitted, {held} held out")
    generic = PROFILES / f"{GENERIC}.yaml"
    text = generic.read_text(encoding="utf-8").split("\ninterval:")[0].rstrip("\n")
    interval = residual_interval(rows, GENERIC).model_dump()
    generic.write_text(text + "\n" + yaml.safe_dump({"interval": interval}, sort_keys=False), encoding="utf-8")
    print(f"{GENERIC}: interval over {sum(interval['rows'].values())} rows")


if __name__ == "__main__":
    main()
