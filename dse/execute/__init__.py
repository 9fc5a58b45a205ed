"""Executors: ``local`` (default) and ``ray`` (imported lazily, only when asked for)."""

from __future__ import annotations

import typing

from dse.errors import InputError
from dse.execute._base import Columns, Executor, concat_columns, evaluate_chunk
from dse.execute._local import LocalExecutor
from dse.execute._ray import start_ray
from dse.space import ExecutorKind

EXECUTORS: tuple[str, ...] = typing.get_args(ExecutorKind)
"""Executor choices: ``local`` (this process) or ``ray`` (a local or remote Ray cluster)."""


def make_executor(kind: str, *, ray_address: str | None = None) -> Executor:
    """An executor by name; ``ray`` starts (or connects to, with ``ray_address``) a Ray cluster."""
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        from dse.execute._ray import RayExecutor

        return RayExecutor(address=ray_address)
    raise InputError(f"unknown executor {kind!r}; expected one of {', '.join(EXECUTORS)}", field="executor")


__all__ = [
    "EXECUTORS",
    "Columns",
    "Executor",
    "LocalExecutor",
    "concat_columns",
    "evaluate_chunk",
    "make_executor",
    "start_ray",
]
