"""Files a user edited, cut short or saved from a spreadsheet: each read with its real line numbers, or refused
with exit 2 naming the file (never a traceback)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest

import dse
from dse.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "calibrate" / "published_fixture.csv"


def _exit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def test_a_measurements_file_names_the_real_line_and_refuses_extra_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, first, second, *_ = FIXTURE.read_text().splitlines()
    path = tmp_path / "m.csv"
    path.write_text("\n".join([header, first, "", "", second + ",extra,cells"]) + "\n")
    assert _exit(capsys, "validate", "--measurements", str(path)) == (
        2,
        f"error: {path}: line 5: more cells than the header names\n",
    )
    value = next(csv.DictReader([header, second]))["value"]
    path.write_text("\n".join([header, first, "", "", second.replace(f",{value},", ",-1,")]) + "\n")
    code, err = _exit(capsys, "validate", "--measurements", str(path))
    assert code == 2 and "value: line 5: Input should be greater than 0" in err


def test_a_measurements_file_with_a_byte_order_mark_reads_as_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + FIXTURE.read_bytes())  # as spreadsheets save UTF-8
    assert _exit(capsys, "validate", "--measurements", str(path), "--json")[0] == 0
    assert _exit(capsys, "validate", "--measurements", str(FIXTURE), "--json")[0] == 0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dse.run(ROOT / "spaces" / "quickstart.yaml", out=tmp_path_factory.mktemp("run") / "run").directory


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("pareto cut in its header", "pareto.csv: not a run's table: no column"),
        ("pareto with an open quote", "pareto.csv: unreadable: "),
        ("trials without columns", "trials.parquet: not a run's table: no column hardware, tpot_s"),
        ("report.html a directory", "--out: report.html there is a directory"),
    ],
)
def test_a_damaged_run_directory_is_refused_by_dse_report(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "report.html").unlink(missing_ok=True)
    if damage == "pareto cut in its header":
        (run / "pareto.csv").write_bytes((run / "pareto.csv").read_bytes()[:300])
    elif damage == "pareto with an open quote":
        (run / "pareto.csv").write_text('a,"b\n1,2\n')
    elif damage == "trials without columns":
        pd.read_parquet(run / "trials.parquet").drop(columns=["tpot_s", "hardware"]).to_parquet(run / "trials.parquet")
    else:
        (run / "report.html").mkdir()
    code, err = _exit(capsys, "report", str(run))
    assert code == 2 and message in err


def test_a_number_with_an_exponent_and_no_dot_is_a_number(tmp_path: Path) -> None:
    """5e-2 in a space is 0.05 (YAML 1.2, JSON), not the string YAML 1.1 reads; a whole number stays whole."""
    from dse.space import load_space

    text = (ROOT / "spaces" / "quickstart.yaml").read_text()
    assert "tpot_s: 0.05" in text
    path = tmp_path / "space.yaml"
    path.write_text(text.replace("tpot_s: 0.05", "tpot_s: 5e-2"))
    space = load_space(path)
    assert space.record.slo.tpot_s == 0.05 and isinstance(space.record.workload.prompt_tokens, int)
