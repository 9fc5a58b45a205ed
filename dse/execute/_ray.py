"""The ``ray`` executor: chunks as Ray tasks on a local or remote cluster (``pip install "dse[ray]"``).

Nothing here runs at import time and ``ray`` itself is imported only when a ``RayExecutor`` is created, so
``import dse`` stays light.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import InputError
from dse.execute._base import Columns, Executor, evaluate_chunk
from dse.space import Space, SpaceRecord, build_space

_WORKER_SPACES: dict[str, Space] = {}
"""Spaces rebuilt in this (worker) process, by payload key: each worker builds each space once."""

_REMOTE: Any = None
"""The Ray remote function, created on first use (needs ``ray`` imported)."""


AUTH_HELP = (
    "a cluster started with token authentication (Ray's default) accepts only clients that hold its token: set"
    " RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) here as on its nodes (docs/search.md)"
)


CONNECT_TIMEOUT_S = 10.0
"""Seconds an address has to answer before ``check_address`` gives up on it. Ray itself retries an address
where no cluster answers for about 14 minutes (Ray 2.60), deaf to Ctrl-C while a retry waits."""

_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
"""What an HTTP/2 client sends first (RFC 9113 §3.4): the preface, then an empty SETTINGS frame."""
_SETTINGS = 0x04
"""The type of an HTTP/2 SETTINGS frame (the 4th byte of its 9-byte header), which a gRPC server sends first."""


def _host_port(address: str) -> tuple[str, int]:
    """``HOST:PORT``, ``ray://HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"expected HOST:PORT (e.g. 10.0.0.5:6379), got {address!r}", field="ray-address")
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse (``InputError`` naming --ray-address), within ``timeout_s``, an address where no Ray cluster can
    answer: a host that does not resolve, a port where nothing listens or nothing answers, or a server that
    does not speak gRPC. A Ray head's GCS port (and a Ray Client's ``ray://`` one) answers the HTTP/2 preface
    with a SETTINGS frame; under TLS (``RAY_USE_TLS``) only the connection is tried. ``auto`` is Ray's."""
    if address in ("auto", "local"):
        return
    host, port = _host_port(address)
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            connection.settimeout(timeout_s)
            connection.sendall(_HTTP2_PREFACE)
            header = connection.recv(9)
    except socket.gaierror as exc:
        raise InputError(f"no host named {host!r} ({exc.strerror})", field="ray-address") from None
    except TimeoutError:
        raise InputError(
            f"no answer from {where} within {timeout_s:g} s: is the cluster up, and this its head's address?",
            field="ray-address",
        ) from None
    except OSError as exc:
        raise InputError(
            f"no Ray cluster at {where} ({exc.strerror or exc}): is the cluster up, and is this the address "
            "`ray start --head` printed?",
            field="ray-address",
        ) from None
    if len(header) < 4 or header[3] != _SETTINGS:
        raise InputError(
            f"something answers at {where}, but not as a Ray cluster does: the address is the head's GCS port "
            "(6379 unless `ray start --port` chose another; its dashboard's 8265 is not it)",
            field="ray-address",
        )


def start_ray(address: str | None = None) -> tuple[Any, bool]:
    """(the ``ray`` module, whether this call started it): reuse a running Ray, connect to ``address`` (or
    ``RAY_ADDRESS``), or else start a new local Ray on this machine's cores, without dashboard or usage
    statistics, whatever address file an earlier cluster left behind. An address where no cluster answers is
    refused within ``CONNECT_TIMEOUT_S`` (``check_address``)."""
    try:
        import ray
    except ImportError:
        raise InputError('the ray executor needs Ray: pip install "dse[ray]"', field="executor") from None
    if ray.is_initialized():
        return ray, False
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # never phone home
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:  # "local": a new Ray here, never a stale /tmp/ray/ray_current_cluster
        # Ray turns token authentication on for a cluster it starts and warns on every run, advising to turn it
        # off: for this cluster, started and stopped by this process, the advice is noise (connecting to a
        # cluster of one's own keeps every message)
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        ray.init(
            address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
            ignore_reinit_error=True,
        )  # fmt: skip
        return ray, True
    check_address(address)  # Ray would retry where nothing answers for minutes
    try:
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
    except ray.exceptions.AuthenticationError as exc:
        raise InputError(f"the cluster refused this client ({exc}); {AUTH_HELP}", field="ray-address") from None
    except (ConnectionError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"no Ray cluster answers at {address}, or it refused this client ({exc}); {AUTH_HELP}", field="ray-address"
        ) from None
    return ray, True


def _space_payload(space: Space) -> dict[str, Any]:
    """What a worker needs to rebuild ``space``: the validated record (JSON), source, path and digest.

    ``Space`` keeps no path; when ``source`` names a file, its absolute path is shipped so that relative
    model references resolve as they did on the driver. The expected sizes let the worker check its rebuild.
    """
    path = Path(space.source) if Path(space.source).is_file() else None
    payload: dict[str, Any] = {
        "record": space.record.model_dump(mode="json"),
        "source": space.source,
        "path": str(Path(path).resolve()) if path is not None else None,
        "digest": space.digest,
        "size": space.size,
        "full_size": space.full_size,
    }
    payload["key"] = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return payload


def _worker_space(payload: dict[str, Any]) -> Space:
    """The space of ``payload``, built once per worker process and then served from ``_WORKER_SPACES``."""
    space = _WORKER_SPACES.get(payload["key"])
    if space is None:
        path = Path(payload["path"]) if payload["path"] is not None else None
        space = build_space(
            SpaceRecord.model_validate(payload["record"]), source=payload["source"], path=path, digest=payload["digest"]
        )
        if (space.size, space.full_size) != (payload["size"], payload["full_size"]):
            raise InputError(
                f"a Ray worker rebuilt this space with {space.size} candidates, the driver has {payload['size']}; "
                "are the same catalog files visible on every node?",
                source=payload["source"],
            )
        _WORKER_SPACES[payload["key"]] = space
    return space


def _evaluate_task(payload: dict[str, Any], ids: np.ndarray, delay_s: float) -> tuple[str, Columns]:
    """Body of one Ray task: evaluate one chunk, exactly as ``evaluate_chunk`` does locally; with the id of
    the node it ran on."""
    import ray

    if delay_s > 0:  # test hook only (RayExecutor(_delay_s=...)); zero in production
        time.sleep(delay_s)
    return ray.get_runtime_context().get_node_id(), evaluate_chunk(_worker_space(payload), ids)


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        import ray

        # A worker killed mid-task (system failure) is retried by Ray; an exception raised by the evaluation
        # itself is a real error and is not retried.
        _REMOTE = ray.remote(max_retries=3, retry_exceptions=False)(_evaluate_task)
    return _REMOTE


class RayExecutor(Executor):
    """Evaluates chunks as Ray tasks, one task per chunk, at most ``2 x cluster CPUs`` in flight.

    Connects to the cluster at ``address`` when given, reuses an already initialised Ray, or else starts a
    local Ray on this machine's cores (no dashboard, no usage statistics). Results equal ``LocalExecutor``'s
    column for column; a chunk whose worker dies is re-run by Ray (up to 3 times), so each chunk is yielded
    exactly once. Workers rebuild the space from its validated record (shipped once per space with
    ``ray.put``), so the catalogs it names must be loadable on every node. ``close`` shuts Ray down only if
    this executor started it.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, _delay_s: float = 0.0) -> None:
        self._ray, self._owns = start_ray(address)
        self._delay_s = float(_delay_s)
        self._payloads: dict[str, Any] = {}
        self.chunks_per_node: Counter[str] = Counter()
        """Chunks evaluated on each node of the cluster (by Ray node id)."""

    def _payload_ref(self, space: Space) -> Any:
        payload = _space_payload(space)
        ref = self._payloads.get(payload["key"])
        if ref is None:
            ref = self._payloads[payload["key"]] = self._ray.put(payload)
        return ref

    def map_ids(self, space: Space, chunks: Iterable[np.ndarray]) -> Iterator[tuple[int, Columns]]:
        """Submit one task per chunk, keep a bounded number in flight, yield (position, columns) as they finish."""
        ray = self._ray
        remote = _remote()
        payload = self._payload_ref(space)
        limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        pending: dict[Any, int] = {}
        todo = enumerate(chunks)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    item = next(todo, None)
                    if item is None:
                        exhausted = True
                        break
                    position, ids = item
                    ref = remote.remote(payload, np.asarray(ids, dtype=np.int64), self._delay_s)
                    pending[ref] = position
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), self._get(ref)
        finally:
            for ref in pending:  # abandoned (error or early stop): do not leave work running
                ray.cancel(ref)

    def _get(self, ref: Any) -> Columns:
        """A task's columns; an ``InputError`` raised in the worker comes back as itself, not wrapped."""
        try:
            node, columns = self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, InputError):
                raise exc.cause from None
            raise
        self.chunks_per_node[node] += 1
        return columns  # type: ignore[no-any-return]

    def work(self) -> dict[str, Any]:
        return {"nodes": len(self.chunks_per_node), "chunks_per_node": dict(self.chunks_per_node)}

    def close(self) -> None:
        """Shut Ray down if this executor started it (a shared or user-started Ray is left running)."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False
