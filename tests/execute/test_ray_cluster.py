"""A real two-node Ray cluster on this machine (``ray start --head`` on 127.0.0.1, then a second node with
``ray start --address``), token authentication on, as a user would run one: ``dse run --ray-address`` uses
both nodes and finds the local front, byte for byte; a client without the token is refused with exit 2 and a
message saying what to set; without an address, ``dse`` starts its own Ray whatever a dead cluster left."""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "spaces" / "quickstart.yaml"
RAY = str(Path(sys.executable).parent / "ray")
STALE = Path("/tmp/ray/ray_current_cluster")
"""Where Ray records the address of the last cluster started on this machine."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _nodes_alive(address: str, env: dict[str, str]) -> int:
    code = (
        f"import ray; ray.init(address='{address}', log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    token = secrets.token_hex(32)
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    scratch = tempfile.mkdtemp(prefix="dse-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    left = STALE.read_bytes() if STALE.exists() else None  # the head records its address there: put it back
    common = ["--block", "--num-cpus=1", "--disable-usage-stats", f"--temp-dir={scratch}"]
    head = subprocess.Popen(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false", *common],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    nodes = [head]
    try:
        deadline = time.monotonic() + 90
        while _nodes_alive(address, env) < 1 and time.monotonic() < deadline:
            time.sleep(1)
        worker = subprocess.Popen(
            [RAY, "start", f"--address={address}", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        nodes.append(worker)
        while _nodes_alive(address, env) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        assert _nodes_alive(address, env) == 2, "the two-node cluster did not come up"
        yield address, env
    finally:
        _stop(nodes, scratch)
        if left is None:
            STALE.unlink(missing_ok=True)
        else:
            STALE.write_bytes(left)


def _stop(nodes: list[subprocess.Popen[bytes]], scratch: str) -> None:
    """Stop this cluster only (another Ray on the machine is left alone): its ``ray start`` processes, then
    every process that still names its temporary directory (GCS, raylets, workers)."""
    import psutil

    for node in reversed(nodes):
        os.killpg(node.pid, signal.SIGKILL)
        node.wait(timeout=15)
    for process in psutil.process_iter(["cmdline"]):
        if any(scratch in part for part in process.info["cmdline"] or ()):
            process.kill()
    shutil.rmtree(scratch, ignore_errors=True)


def _space(tmp_path: Path) -> Path:
    """The quickstart space with flash on and off and four KV layouts (24,600 candidates after pruning) in
    chunks of 50: 492 tasks, enough that the second node's worker is up (about a second) long before they are
    done."""
    path = tmp_path / "space.yaml"
    text = QUICKSTART.read_text().replace(
        "  kv: [null, fp8]", "  kv: [null, fp8]\n  flash_attention: [true, false]\n  kv_block_size: [null, 16, 32, 64]"
    )
    path.write_text(text + "execution: {chunk_size: 50}\n")
    return path


def _dse(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dse.cli", *argv], env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_a_run_on_the_cluster_uses_both_nodes_and_finds_the_local_front(
    cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = cluster
    space = _space(tmp_path)
    done = _dse(env, "run", str(space), "--executor", "ray", "--ray-address", address, "--out", str(tmp_path / "ray"))
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    work = summary["work"]
    assert work["nodes"] == 2 and all(n > 0 for n in work["chunks_per_node"].values())
    assert sum(work["chunks_per_node"].values()) == math.ceil(summary["counts"]["evaluated"] / 50)
    local = _dse(env, "run", str(space), "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "ray" / "pareto.csv").read_bytes() == (tmp_path / "local" / "pareto.csv").read_bytes()
    by_env = _dse(env | {"RAY_ADDRESS": address}, "run", str(space), "--executor", "ray", "--out", str(tmp_path / "e"))
    assert by_env.returncode == 0 and json.loads((tmp_path / "e" / "summary.json").read_text())["work"]["nodes"] == 2


def test_a_client_without_the_token_is_refused_with_what_to_set(
    cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = cluster
    stranger = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")} | {"HOME": str(tmp_path)}
    done = _dse(stranger, "run", str(QUICKSTART), "--executor", "ray", "--ray-address", address, "--out", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "RAY_AUTH_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_without_an_address_a_stale_cluster_file_is_ignored(tmp_path: Path) -> None:
    stale = STALE
    saved = stale.read_bytes() if stale.exists() else None
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("127.0.0.1:1\n")  # a cluster that is long gone
    try:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        done = _dse(env, "run", str(QUICKSTART), "--executor", "ray", "--out", str(tmp_path / "run"))
        assert done.returncode == 0, done.stderr
    finally:
        if saved is None:
            stale.unlink(missing_ok=True)
        else:
            stale.write_bytes(saved)
