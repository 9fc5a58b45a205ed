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


def test_only_numbers_with_digits_read_as_exponent_floats_and_written_files_read_back() -> None:
    """'-e5' and '.e5' stay strings (a description, an id); a string that looks like a number ('1e3') is quoted
    when dse writes YAML (a sweep's point, a fitted profile), so it reads back a string."""
    import yaml

    from dse.catalog import read_document, yaml_text
    from dse.catalog._files import _UniqueKeyLoader

    read = yaml.load("a: -e5\nb: .e5\nc: +E3\nd: 2.5E+3\n", Loader=_UniqueKeyLoader)
    assert read == {"a": "-e5", "b": ".e5", "c": "+E3", "d": 2500.0}
    data = {"name": "1e3", "description": "5e-2", "slo": {"tpot_s": 0.05}, "batch": [1, 8]}
    assert yaml.load(yaml_text(data), Loader=_UniqueKeyLoader) == data
    assert callable(read_document)


def test_a_lognormal_cut_above_its_median_is_a_valid_space(tmp_path: Path) -> None:
    """Mean 1,000 and sigma 2 put the median at 135 tokens: a max of 800 cuts about a fifth of the lengths, a
    valid choice (the check is against the median, not the mean)."""
    import yaml

    from dse.space import load_space

    data = yaml.safe_load((ROOT / "spaces" / "quickstart.yaml").read_text())
    data["workload"]["prompt_tokens"] = {"distribution": "lognormal", "mean": 1000, "sigma": 2.0, "max": 800}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_space(path).record.workload.prompt_tokens.max == 800  # type: ignore[union-attr]
