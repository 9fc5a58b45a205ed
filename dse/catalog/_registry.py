"""Finding catalog entries by id or path. Loaders return registries; nothing is loaded at import time."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dse.catalog._files import read_document, suggestion, validate
from dse.catalog._hardware import (
    HardwareRecord,
    HardwareSpec,
    SystemRecord,
    SystemSpec,
    hardware_spec,
    system_spec,
)
from dse.catalog._model import ModelRecord, ModelSpec, model_spec
from dse.catalog._profile import EfficiencyProfile, ProfileRecord, efficiency_profile
from dse.catalog._quant import KVFormatRecord, QuantCatalogRecord, SchemeRecord
from dse.errors import InputError

_SUFFIXES = (".yaml", ".yml", ".json")


def catalog_root() -> Path:
    """Folder holding ``hardware/``, ``models/`` and ``quantization/``.

    A source checkout (editable install) uses the repository's folders; an installed wheel carries copies
    under ``dse/_catalogs``.
    """
    package = Path(__file__).resolve().parents[1]
    for root in (package.parent, package / "_catalogs"):
        if (root / "hardware" / "accelerators").is_dir():
            return root
    raise InputError("catalog folders not found (hardware/, models/); is the package installed correctly?")


def _records(folder: Path, record_type: type, label: str) -> dict[str, object]:
    entries: dict[str, object] = {}
    for path in sorted(folder.glob("*.yaml")):
        record: Any = validate(record_type, read_document(path), source=str(path), path=path)
        if record.id in entries:
            raise InputError(f"duplicate {label} id {record.id!r}", source=str(path), field="id")
        if path.stem != record.id:
            raise InputError(f"id {record.id!r} must match the file name", source=str(path), field="id")
        entries[record.id] = record
    return entries


def is_path(ref: str) -> bool:
    """Whether a catalog reference names a file (YAML/JSON, or anything with a path separator), not an id."""
    return ref.lower().endswith(_SUFFIXES) or "/" in ref or "\\" in ref


def _lookup(ref: str, registry: Mapping[str, object], label: str):  # type: ignore[no-untyped-def]
    if ref in registry:
        return registry[ref]
    command = {"model": "models", "kv": "quant", "profile": "profiles", "system": "systems"}.get(label, label)
    hint = suggestion(ref, registry) or f" (see `dse catalog {command}`)"
    raise InputError(f"unknown {label} id {ref!r}{hint}", field=label)


@functools.cache
def hardware_catalog() -> Mapping[str, HardwareSpec]:
    """Every accelerator in ``hardware/accelerators``, by id."""
    records = _records(catalog_root() / "hardware" / "accelerators", HardwareRecord, "hardware")
    return {key: hardware_spec(rec) for key, rec in records.items()}  # type: ignore[arg-type]


def load_hardware(ref: str) -> HardwareSpec:
    """An accelerator by catalog id, or from a YAML/JSON file path (DESIGN.md §4 custom hardware)."""
    if is_path(ref):
        path = Path(ref)
        return hardware_spec(validate(HardwareRecord, read_document(path), source=ref, path=path))
    return _lookup(ref, hardware_catalog(), "hardware")  # type: ignore[no-any-return]


@functools.cache
def system_catalog() -> Mapping[str, SystemSpec]:
    """Every system (node type) in ``hardware/systems``, by id, bound to its accelerator."""
    folder = catalog_root() / "hardware" / "systems"
    systems = {}
    for key, rec in _records(folder, SystemRecord, "system").items():
        assert isinstance(rec, SystemRecord)
        try:
            accelerator = hardware_catalog()[rec.accelerator]
        except KeyError:
            raise InputError(
                f"unknown accelerator {rec.accelerator!r}{suggestion(rec.accelerator, hardware_catalog())}",
                source=str(folder / f"{key}.yaml"),
                field="accelerator",
            ) from None
        systems[key] = system_spec(rec, accelerator)
    return systems


def load_system(ref: str) -> SystemSpec:
    """A system by catalog id, or from a YAML file path (its ``accelerator`` an id or a path)."""
    if not is_path(ref):
        return _lookup(ref, system_catalog(), "system")  # type: ignore[no-any-return]
    path = Path(ref)
    record = validate(SystemRecord, read_document(path), source=ref, path=path)
    accelerator_ref = record.accelerator
    try:
        accelerator = load_hardware(accelerator_ref)
    except InputError as exc:
        raise InputError(str(exc).split(": ", 1)[-1], source=ref, field="accelerator") from None
    return system_spec(record, accelerator)


def load_target(ref: str) -> tuple[HardwareSpec, SystemSpec | None]:
    """What a candidate runs on: a system (node size, links) with its accelerator, or a bare accelerator.

    ``ref`` is a system or accelerator id, or a YAML path; a file with ``devices_per_node`` is a system."""
    if is_path(ref):
        data = read_document(Path(ref))
        if isinstance(data, dict) and "devices_per_node" in data:
            system = load_system(ref)
            return system.accelerator, system
        return load_hardware(ref), None
    systems = system_catalog()
    if ref in systems:
        return systems[ref].accelerator, systems[ref]
    if ref in hardware_catalog():
        return hardware_catalog()[ref], None
    known = {**hardware_catalog(), **systems}
    hint = suggestion(ref, known) or " (see `dse catalog hardware` and `dse catalog systems`)"
    raise InputError(f"unknown hardware or system id {ref!r}{hint}", field="hardware")


def _known_checkpoint(record: ModelRecord, source: str) -> ModelRecord:
    """``record``, once its checkpoint's scheme is known to the quantization catalog (a misspelt one would
    silently never match a candidate's scheme)."""
    if record.checkpoint is not None and record.checkpoint.scheme not in {s.id for s in quant_catalog().schemes}:
        known = ", ".join(s.id for s in quant_catalog().schemes)
        raise InputError(
            f"unknown scheme {record.checkpoint.scheme!r}; expected one of {known}",
            source=source,
            field="checkpoint.scheme",
        )
    return record


def _model_from_path(path: Path) -> ModelSpec:
    data = read_document(path)
    if path.suffix.lower() == ".json":
        from dse.catalog._hf_config import model_record_from_hf_config

        if not isinstance(data, dict):
            raise InputError("expected a JSON object (a Hugging Face config.json)", source=str(path))
        return model_spec(model_record_from_hf_config(data, source=str(path)))
    return model_spec(_known_checkpoint(validate(ModelRecord, data, source=str(path), path=path), str(path)))


@functools.cache
def model_catalog() -> Mapping[str, ModelSpec]:
    """Every model in ``models/``, by id."""
    records = _records(catalog_root() / "models", ModelRecord, "model")
    folder = catalog_root() / "models"
    return {key: model_spec(_known_checkpoint(rec, str(folder / f"{key}.yaml"))) for key, rec in records.items()}  # type: ignore[arg-type]


def load_model(ref: str) -> ModelSpec:
    """A model by catalog id, or from a path: our YAML schema or a Hugging Face ``config.json``."""
    if is_path(ref):
        return _model_from_path(Path(ref))
    return _lookup(ref, model_catalog(), "model")  # type: ignore[no-any-return]


@functools.cache
def quant_catalog() -> QuantCatalogRecord:
    """The quantization schemes and KV-cache formats."""
    path = catalog_root() / "quantization" / "schemes.yaml"
    catalog = validate(QuantCatalogRecord, read_document(path), source=str(path), path=path)
    kv_ids = {kv.id for kv in catalog.kv_formats}
    for index, scheme in enumerate(catalog.schemes):
        if scheme.kv not in kv_ids:
            raise InputError(f"unknown KV format {scheme.kv!r}", source=str(path), field=f"schemes.{index}.kv")
    return catalog


def load_scheme(ref: str) -> SchemeRecord:
    """A quantization scheme by id."""
    return _lookup(ref, {s.id: s for s in quant_catalog().schemes}, "quant")  # type: ignore[no-any-return]


def load_kv_format(ref: str) -> KVFormatRecord:
    """A KV-cache format by id."""
    return _lookup(ref, {k.id: k for k in quant_catalog().kv_formats}, "kv")  # type: ignore[no-any-return]


@functools.cache
def profile_catalog() -> Mapping[str, EfficiencyProfile]:
    """Every efficiency profile in ``hardware/profiles``, by id."""
    records = _records(catalog_root() / "hardware" / "profiles", ProfileRecord, "profile")
    return {key: efficiency_profile(rec) for key, rec in records.items()}  # type: ignore[arg-type]


CALIBRATED = "calibrated"
"""The profile name that means: the fitted profile of each target's family (``profile_for``)."""
GENERIC = "default"
"""The profile of hardware no fitted profile covers."""
ENGINE_PREFERENCE = ("tensorrt-llm", "vllm", "sglang", "llama.cpp")
"""Which engine's fitted profile describes a target when no engine is named: serving engines first."""


def known_engine(engine: str) -> str:
    """``engine`` when a fitted profile or ``ENGINE_PREFERENCE`` names it; else ``InputError`` naming the
    engines known (an engine no profile is fitted for is scored with the generic ``default`` profile)."""
    known = dict.fromkeys(
        [*ENGINE_PREFERENCE, *(p.record.engine for p in profile_catalog().values() if p.record.engine)]
    )
    if engine in known:
        return engine
    hint = suggestion(engine, known) or f" (known: {', '.join(known)})"
    raise InputError(f"unknown engine {engine!r}{hint}", field="engine")


def profile_for(accelerator: str, engine: str | None = None) -> tuple[EfficiencyProfile, bool]:
    """The fitted profile of an accelerator's family (for ``engine`` when given), and whether the accelerator
    itself was measured in its fit (``calibrated``). Without an engine, the ``automatic`` profiles compete and
    serving engines come first (``ENGINE_PREFERENCE``). Hardware no fitted profile covers gets the generic
    ``default`` profile, uncalibrated."""
    covering = [p for p in profile_catalog().values() if accelerator in p.record.hardware]
    if engine is None:
        covering = [p for p in covering if p.record.automatic]
    else:
        covering = [p for p in covering if p.record.engine == engine]

    def rank(p: EfficiencyProfile) -> tuple[int, str]:
        e = p.record.engine
        return (ENGINE_PREFERENCE.index(e) if e in ENGINE_PREFERENCE else len(ENGINE_PREFERENCE), p.id)

    if not covering:
        return load_profile(GENERIC), False
    chosen = min(covering, key=rank)
    return chosen, accelerator in chosen.calibrated_on


def load_profile(ref: str) -> EfficiencyProfile:
    """An efficiency profile by id or path."""
    if is_path(ref):
        path = Path(ref)
        return efficiency_profile(validate(ProfileRecord, read_document(path), source=ref, path=path))
    return _lookup(ref, profile_catalog(), "profile")  # type: ignore[no-any-return]
