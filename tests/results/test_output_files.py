"""Output paths: checked before the work that fills them (naming the option), and a write that fails at the
end leaves the old file and no temporary one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dse.errors import InputError
from dse.results import check_output_directory, check_output_file, replace_durably, write_text_durably
from dse.results._files import write_json, write_table


def test_a_write_over_a_directory_fails_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    for write in (
        lambda: write_text_durably(folder, "text"),
        lambda: write_json(folder, {"a": 1}),
        lambda: write_table({"x": np.arange(3)}, folder),
    ):
        with pytest.raises(OSError):
            write()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_move_that_fails_removes_the_temporary_file_and_keeps_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_text_durably(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    tmp = tmp_path / "x.tmp"
    tmp.write_text("new")
    with pytest.raises(OSError):
        replace_durably(tmp, target)
    assert not tmp.exists()


@pytest.mark.parametrize(
    ("name", "check", "expected"),
    [
        ("folder", check_output_file, "is a directory; expected a file path"),
        ("afile", check_output_directory, "is a file; expected a directory path"),
        ("afile/x.html", check_output_file, "cannot be written: {tmp}/afile is a file, not a directory"),
        ("afile/sub", check_output_directory, "cannot be written: {tmp}/afile is a file, not a directory"),
    ],
)
def test_an_output_that_cannot_be_written_names_the_option(
    tmp_path: Path, name: str, check: object, expected: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError) as info:
        check(tmp_path / name, "report")  # type: ignore[operator]
    assert str(info.value) == f"{tmp_path / name}: --report: " + expected.format(tmp=tmp_path)


def test_checking_an_output_creates_nothing(tmp_path: Path) -> None:
    check_output_file(tmp_path / "new" / "deeper" / "report.html", "report")
    check_output_directory(tmp_path / "new" / "results", "out")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="--out: cannot be written: nothing can be created in /proc"):
        check_output_file(Path("/proc/nope/x.json"), "out")
