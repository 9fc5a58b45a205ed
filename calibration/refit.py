"""Refit every fitted efficiency profile in ``hardware/profiles`` to ``calibration/measurements.csv``.

A fitted profile's file says which accelerators it covers (``hardware``), which engine's rows it is fitted to
(``engine``) and whether it is chosen without naming that engine (``automatic``); this script keeps those and
refits the efficiencies (``dse calibrate`` with the file as its own base). Intervals pool the held-out rows of
every family (each accelerator left out of its family's fit in turn): one family's few accelerators say too
little about the spread on the next one. The generic ``default`` profile is not fitted (its figures are
documented round values); it gets the interval of its residuals on every row, which stands in for hardware no
fitted profile covers.

    python calibration/refit.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from dse.calibrate import SCORED_SCENARIOS, calibrate, read_measurements, residual_interval
from dse.calibrate._fit import held_out_interval, interval_table
from dse.catalog import GENERIC, profile_catalog
from dse.results import replace_durably

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "hardware" / "profiles"
HEADER = (
    "# Written by calibration/refit.py from calibration/measurements.csv: edit id, description, hardware, engine,\n"
    "# automatic, provenance (the sources of the unfitted fields) and the unfitted fields by hand, then re-run it.\n"
)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` whole: a stopped run leaves the old profile, never half of a new one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    replace_durably(tmp, path)


def main() -> None:
    rows = [
        m for m in read_measurements(ROOT / "calibration" / "measurements.csv") if m.record.scenario in SCORED_SCENARIOS
    ]
    fits = {}
    for profile in profile_catalog().values():
        if profile.record.hardware:  # a profile of a hardware family is fitted to that family's rows
            fits[profile.id] = fit = calibrate(rows, base=profile.id, profile_id=profile.id)
            print(f"  fitted {', '.join(fit.record.fit.parameters)}" if fit.record.fit else "")
            held = f"{fit.held_out:.1%}" if fit.held_out is not None else "n/a"
            print(f"{profile.id}: {fit.rows} rows, median |error| {fit.after:.1%} fitted, {held} held out")
    residuals = {row: r for fit in fits.values() for row, r in fit.held_out_residuals.items()}
    held_rows = [m for m in rows if m.record.id in residuals]
    ratios, counts = interval_table(held_rows, np.asarray([residuals[m.record.id] for m in held_rows]))
    interval = held_out_interval(ratios, counts, f"every fitted profile ({', '.join(fits)})")
    for profile_id, fit in fits.items():
        written = profile_catalog()[profile_id].record
        kept = {"description": written.description, "provenance": written.provenance, "interval": interval}
        text = yaml.safe_dump(fit.record.model_copy(update=kept).model_dump(exclude_none=True), sort_keys=False)
        _write(PROFILES / f"{profile_id}.yaml", HEADER + text)
    print(f"intervals over {len(held_rows)} held-out rows: {ratios}")
    generic = PROFILES / f"{GENERIC}.yaml"
    text = generic.read_text(encoding="utf-8").split("\ninterval:")[0].rstrip("\n")
    interval = residual_interval(rows, GENERIC).model_dump()
    _write(generic, text + "\n" + yaml.safe_dump({"interval": interval}, sort_keys=False))
    print(f"{GENERIC}: interval over {sum(interval['rows'].values())} rows")


if __name__ == "__main__":
    main()
