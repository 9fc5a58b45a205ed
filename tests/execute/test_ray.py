"""RayExecutor against a real local Ray (2 CPUs): same columns as LocalExecutor, survives a killed worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from dse.errors import InputError  # noqa: E402
from dse.execute import Columns, LocalExecutor, make_executor  # noqa: E402
from dse.execute._ray import RayExecutor, check_address  # noqa: E402
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


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A port that accepts connections (and answers nothing by itself), with its address."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server, f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _free_address() -> str:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return f"127.0.0.1:{server.getsockname()[1]}"  # closed on return: nothing listens there


def test_an_address_where_no_cluster_answers_is_refused_at_once(listener: tuple[socket.socket, str]) -> None:
    """Ray retries such an address for about 14 minutes, deaf to Ctrl-C: it is refused before Ray is asked."""
    started = time.monotonic()
    for address, expected in (
        ("no-such-host.invalid:6379", "no host named 'no-such-host.invalid'"),
        (_free_address(), "no Ray cluster at 127.0.0.1:"),
        (listener[1], f"no answer from {listener[1]} within 0.5 s"),  # accepts, never answers
        ("10.0.0.5", "expected HOST:PORT"),
    ):
        with pytest.raises(InputError, match=f"^ray-address: {expected}"):
            check_address(address, timeout_s=0.5)
    assert time.monotonic() - started < 10


def test_a_server_that_is_not_a_ray_cluster_is_refused(listener: tuple[socket.socket, str]) -> None:
    server, address = listener

    def answer_as_a_web_server() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(64)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer_as_a_web_server, daemon=True).start()
    with pytest.raises(InputError, match=r"something answers at .* but not as a Ray cluster does.*8265"):
        check_address(address, timeout_s=5)


def test_a_ray_head_passes_the_check(ray_cluster: None) -> None:
    check_address(ray.get_runtime_context().gcs_address)


def test_run_refuses_an_unreachable_cluster_and_leaves_nothing(tmp_path: Path) -> None:
    """Exit 2 naming --ray-address, within seconds, no run directory; Ctrl-C while connecting stops it."""
    argv = [sys.executable, "-m", "dse.cli", "run", str(QUICKSTART), "--out", str(tmp_path / "run")]
    done = subprocess.run([*argv, "--executor", "ray", "--ray-address", _free_address()], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "ray-address: no Ray cluster at" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()
    done = subprocess.run([*argv, "--ray-address", "10.0.0.5:6379"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "ray-address: connects the ray executor" in done.stderr
    assert "--executor ray" in done.stderr and not (tmp_path / "run").exists()


def test_ctrl_c_stops_a_connection_that_waits(listener: tuple[socket.socket, str], tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "dse.cli", "run", str(QUICKSTART), "--out", str(tmp_path / "run")]
    proc = subprocess.Popen([*argv, "--executor", "ray", "--ray-address", listener[1]], stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        listener[0].settimeout(60)
        connection, _ = listener[0].accept()  # the check has connected, and waits for an answer
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=5)
        connection.close()
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err  # typer's exit code for Ctrl-C
    assert not (tmp_path / "run").exists()
