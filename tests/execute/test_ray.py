"""RayExecutor against a real local Ray (2 CPUs): same columns as LocalExecutor, survives a killed worker."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from dse.errors import InputError  # noqa: E402
from dse.execute import Columns, LocalExecutor, make_executor  # noqa: E402
from dse.execute._ray import RayExecutor  # noqa: E402
from dse.space import Space, load_space  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[2] / "spaces" / "quickstart.yaml"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray for every test here; executors created while it runs reuse it."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a stale cluster
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def quickstart() -> tuple[Space, np.ndarray, Columns]:
    """The quickstart space, every candidate id of its pruned enumeration, and the local columns."""
    space = load_space(QUICKSTART)
    ids = space.candidate_ids(*space.codes_of_index(np.arange(space.size)))
    return space, ids, LocalExecutor().evaluate_ids(space, ids, 500)


def assert_same_columns(got: Columns, want: Columns) -> None:
    assert list(got) == list(want)
    for name, expected in want.items():
        actual = got[name]
        assert actual.dtype == expected.dtype, name
        assert actual.shape == expected.shape, name
        if expected.dtype == object:
            assert actual.tolist() == expected.tolist(), name
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=name, strict=True)


def test_identical_to_local_executor(ray_cluster: None, quickstart: tuple[Space, np.ndarray, Columns]) -> None:
    space, ids, local = quickstart
    assert len(ids) == 4312
    executor = make_executor("ray")
    assert isinstance(executor, RayExecutor)
    got = executor.evaluate_ids(space, ids, 500)
    assert_same_columns(got, local)
    np.testing.assert_array_equal(got["candidate_id"], ids)
    assert got["feasible"].any() and not got["feasible"].all()  # both branches are compared
    executor.close()
    assert ray.is_initialized(), "close() must not shut down a Ray it did not start"


def test_one_result_per_chunk_and_bounded_in_flight(
    ray_cluster: None, quickstart: tuple[Space, np.ndarray, Columns]
) -> None:
    space, ids, _ = quickstart
    chunks = [ids[i : i + 100] for i in range(0, len(ids), 100)]
    pulled: list[int] = []

    def lazily() -> Iterator[np.ndarray]:
        for position, chunk in enumerate(chunks):
            pulled.append(position)
            yield chunk

    results = RayExecutor().map_ids(space, lazily())
    first_position, _ = next(results)
    assert len(pulled) <= 4, "at most 2 x CPUs chunks may be submitted before results are consumed"
    rest = list(results)
    positions = [first_position] + [p for p, _ in rest]
    assert sorted(positions) == list(range(len(chunks)))
    assert list(RayExecutor().map_ids(space, [])) == []


def _running_task_pids() -> list[int]:
    """Workers of our Ray (descendants of this process, which started it) now running an evaluation task.

    Ray retitles a worker ``ray::_evaluate_task`` while it runs that task (``ray::IDLE`` otherwise).
    """
    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if " ".join(proc.cmdline()).startswith("ray::_evaluate_task"):
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return pids


def test_killed_worker_chunk_is_retried(ray_cluster: None, quickstart: tuple[Space, np.ndarray, Columns]) -> None:
    space, ids, _ = quickstart
    ids, chunk_size = ids[:1000], 50
    local = LocalExecutor().evaluate_ids(space, ids, chunk_size)  # same chunks: results may differ by 1 ulp otherwise
    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    executor = RayExecutor(_delay_s=0.3)  # each task sleeps before evaluating: a wide window to kill it in
    results = executor.map_ids(space, chunks)
    parts = dict([next(results)])  # tasks are now running on both workers

    killed = None
    deadline = time.monotonic() + 10
    while killed is None and time.monotonic() < deadline:
        for pid in _running_task_pids():
            try:
                proc = psutil.Process(pid)
                if " ".join(proc.cmdline()).startswith("ray::_evaluate_task"):  # still mid-task: kill it
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
            except (psutil.Error, ProcessLookupError):
                continue
        else:
            time.sleep(0.01)
    assert killed is not None, "no Ray worker was running an evaluation task"

    for position, columns in results:
        assert position not in parts, f"chunk {position} yielded twice"
        parts[position] = columns
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    assert sorted(parts) == list(range(len(chunks)))
    got = {name: np.concatenate([parts[i][name] for i in range(len(chunks))]) for name in local}
    assert_same_columns(got, local)


def test_missing_ray_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(InputError, match=r'pip install "dse\[ray\]"'):
        RayExecutor()


def test_run_on_ray_gives_the_local_front(tmp_path: Path) -> None:
    """`dse run --executor ray` (a real local Ray) finds exactly the front `--executor local` finds."""
    import dse

    local = dse.run(QUICKSTART, out=tmp_path / "local", engine="exhaustive", executor="local")
    remote = dse.run(QUICKSTART, out=tmp_path / "ray", engine="exhaustive", executor="ray")
    assert remote.summary["executor"] == "ray"
    assert set(remote.front["candidate_id"].tolist()) == set(local.front["candidate_id"].tolist())
    assert sorted(remote.columns["candidate_id"].tolist()) == sorted(local.columns["candidate_id"].tolist())


def test_sweep_studies_run_as_ray_tasks(tmp_path: Path) -> None:
    import dse

    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(f"name: s\nbase: {QUICKSTART}\nexecutor: ray\ngrid:\n  workload.output_tokens: [64, 256]\n")
    result = dse.sweep(experiment, out=tmp_path / "out")
    assert set(result.table["sweep.workload.output_tokens"]) == {64, 256}
    local = dse.run(tmp_path / "out" / "point-001" / "space.yaml", out=tmp_path / "check")
    joined = result.table[result.table["sweep.workload.output_tokens"] == 256]
    assert set(joined["candidate_id"]) == set(local.front["candidate_id"].tolist())
