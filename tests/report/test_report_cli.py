"""``dse report``, ``dse run --report``, ``dse analyze --report`` end to end, and their errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dse.cli import main
from dse.report import write_html

QUICKSTART = Path(__file__).resolve().parents[2] / "spaces" / "quickstart.yaml"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_the_answer_and_writes_the_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "run", str(QUICKSTART), "--out", str(tmp_path / "run"), "--report")
    assert code == 0
    assert "The answer (full front: 129 rows in pareto.csv)" in out
    for line in ("lowest TPOT", "highest per device", "lowest cost", "knee", "a100-sxm-80gb", "rtx-4090"):
        assert line in out
    assert "Pareto front (first" not in out  # rows of the front only with --top
    html = (tmp_path / "run" / "report.html").read_text()
    assert "dse report: quickstart" in html and "<script src=" not in html  # plotly.js embedded, nothing fetched


def test_report_of_a_directory_that_is_not_a_run_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "report", str(tmp_path))
    assert code == 2
    assert "not a run or sweep directory" in err and "manifest.json" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "pdf"], "unknown format pdf"),
        (["--x", "speed"], "Invalid value for '--x'"),
        (["--x", "ttft_s", "--y", "ttft_s"], "the same metric"),
    ],
)
def test_bad_report_options_exit_2(
    capsys: pytest.CaptureFixture[str], exhaustive_dir: Path, tmp_path: Path, argv: list[str], message: str
) -> None:
    code, _, err = _run(capsys, "report", str(exhaustive_dir), "--out", str(tmp_path), *argv)
    assert code == 2 and message in err


def test_no_browser_still_writes_the_html(
    capsys: pytest.CaptureFixture[str], exhaustive_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("DSE_BROWSER", "BROWSER_PATH"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = _run(capsys, "report", str(exhaustive_dir), "--out", str(tmp_path), "--format", "html,png")
    assert code == 1
    assert "apt-get install chromium" in err
    assert (tmp_path / "report.html").stat().st_size > 0


def test_report_with_chosen_axes_and_a_moved_run(
    capsys: pytest.CaptureFixture[str], exhaustive_dir: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(exhaustive_dir, moved)
    (moved / "report.html").unlink(missing_ok=True)
    code, out, _ = _run(capsys, "report", str(moved), "--x", "ttft_s", "--y", "joules_per_token")
    assert code == 0 and str(moved / "report.html") in out
    html = (moved / "report.html").read_text()
    assert "energy per output token vs time to first token" in html


def test_sweep_report(capsys: pytest.CaptureFixture[str], sweep_dir: Path, tmp_path: Path) -> None:
    code, _, _ = _run(capsys, "report", str(sweep_dir), "--out", str(tmp_path))
    html = (tmp_path / "report.html").read_text()
    assert code == 0 and "Fronts across the sweep" in html and "prompt_tokens=4096" in html


def test_analyze_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "one" / "config.html"
    code, out, _ = _run(
        capsys, "analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "8", "--report", str(target)
    )
    assert code == 0 and f"report: {target}" in out
    html = target.read_text()
    assert "Roofline: llama-3.1-8b on h100-sxm" in html and "Memory per device" in html


def test_the_report_says_where_the_slos_are_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """SLOs at a percentile of the load are said as such, not as bounds on the means."""
    space = tmp_path / "space.yaml"
    space.write_text(
        "name: p90\nmodel: llama-3.1-8b\nworkload: {prompt_tokens: 1000, output_tokens: 200, request_rate: 2}\n"
        "slo: {ttft_s: 1.0, percentile: 90}\nchoices: {hardware: [h100-sxm], scheduler: [continuous]}\n"
        "objectives: [{metric: max_request_rate}]\n"
    )
    code, _, _ = _run(capsys, "run", str(space), "--out", str(tmp_path / "run"), "--report")
    assert code == 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "TTFT and TPOT at p90 of the load under continuous batching" in html


def _space(tmp_path: Path, old: str, new: str) -> Path:
    text = QUICKSTART.read_text()
    assert old in text
    space = tmp_path / "space.yaml"
    space.write_text(text.replace(old, new))
    return space


NO_FEASIBLE = ("tpot_s: 0.05}", "tpot_s: 0.000000001}")
PRUNED_WHOLE = ("  kv: [null, fp8]", "  tp: [3]\n  kv: [null, fp8]")
TP_HEADS = "pruned before evaluation: tp must divide the attention heads"


def test_the_report_of_a_run_without_a_feasible_candidate_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "run", str(_space(tmp_path, *NO_FEASIBLE)), "--out", str(tmp_path / "run"), "--report")
    assert code == 0 and "Traceback" not in err
    html = (tmp_path / "run" / "report.html").read_text()
    assert "No feasible candidate: each of the 4,312 evaluated breaks an SLO or constraint" in html
    assert "no feasible configuration: slo ttft_s: above 2 (197 of 277 candidates)" in html
    assert "Choices and metrics: left out, no feasible configuration to draw" in html
    assert "chart-pareto-3d" not in html and "The front in three objectives: left out, the run has no front" in html
    code, _, err = _run(capsys, "report", str(tmp_path / "run"))
    assert code == 0 and "Traceback" not in err


def test_the_report_of_a_run_pruned_whole_gives_the_pruning_reasons(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    space = _space(tmp_path, *PRUNED_WHOLE)
    code, _, err = _run(capsys, "run", str(space), "--out", str(tmp_path / "run"), "--report")
    assert code == 0 and "Traceback" not in err
    html = (tmp_path / "run" / "report.html").read_text()
    assert "No feasible candidate: every candidate was pruned before evaluation" in html
    assert html.count(TP_HEADS) >= 5 and "(8 of 8 combinations)" in html  # each hardware, table and chart
    assert "left out, no candidate was evaluated" in html


@pytest.mark.parametrize("failure", ["disk full while writing", "move refused", "a directory in the way"])
def test_a_report_write_that_fails_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    target = tmp_path / "report.html"
    if failure == "a directory in the way":
        target.mkdir()
    else:
        target.write_text("old")
    write_text = Path.write_text

    def half_then_full(path: Path, text: str, *args: object, **kwargs: object) -> int:
        write_text(path, text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    if failure == "disk full while writing":
        monkeypatch.setattr(Path, "write_text", half_then_full)
    elif failure == "move refused":
        monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_html(target, "title", "<p>intro</p>", "", [])
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert target.is_dir() if failure == "a directory in the way" else target.read_text() == "old"
