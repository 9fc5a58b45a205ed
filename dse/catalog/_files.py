"""Reading catalog files (YAML or JSON) and turning schema violations into clear ``InputError``s.

Every message names the file, the line where YAML/JSON can tell it, the field path, and what was expected.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dse.errors import InputError

ModelT = TypeVar("ModelT", bound=BaseModel)


_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (its wheels are): the same documents and errors, parsed
in C (the catalogs' 170 files take about a tenth of the pure-Python parser's time)."""


class _UniqueKeyLoader(_SAFE_LOADER):  # type: ignore[valid-type,misc]
    """YAML's safe loader, refusing a key written twice in one mapping (YAML itself keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} written twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
"""A number with an exponent, digits before it (5e-2, 4e3, 2.5E+3, .5e1): a float, as in YAML 1.2 and JSON.
YAML 1.1, which PyYAML follows, reads one without a dot as a string, and a space's 5e-2 was refused as "not a
number" (whole numbers stay ints: the int resolver comes first)."""
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """YAML's safe dumper, quoting a string the loader would read as a number (``EXPONENT_FLOAT``: '1e3')."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


def yaml_text(data: Any, **options: Any) -> str:
    """``data`` as YAML that ``read_document`` reads back as it was (``yaml.safe_dump``'s options)."""
    return yaml.dump(data, Dumper=_Dumper, **options)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key written twice."""
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"key {repeated[0]!r} written twice in one object")
    return dict(pairs)


def read_document(path: Path) -> Any:
    """Parse a YAML or JSON file (by extension; YAML otherwise) into plain Python data."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file ({exc})", source=source) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}", source=source
            ) from None
        except ValueError as exc:
            raise InputError(f"malformed JSON: {exc}", source=source) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise InputError(f"{line}malformed YAML: {exc.problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", source=source) from None


def _yaml_line(path: Path | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the node at ``loc`` in a YAML file, or None when it cannot be found."""
    if path is None or path.suffix.lower() == ".json":
        return None
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(key)]
            if not match:
                break
            line = match[0][0].start_mark.line + 1
            node = match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def suggestion(word: str, choices: Iterable[str]) -> str:
    """' (did you mean: a, b?)' for the close matches of ``word`` among ``choices``, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def _parent_model(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The record type that holds the last key of ``loc`` (best effort: None when it cannot be told)."""
    current: Any = model
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        fields = getattr(current, "model_fields", {})
        if key not in fields:
            return None
        annotation = fields[key].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current


def _unknown_key_hint(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """Where a key that moved went (the record's ``moved`` table), else 'did you mean' its near misses."""
    parent = _parent_model(model, loc)
    if parent is None:
        return ""
    moved: dict[str, str] = getattr(parent, "moved", {})
    if str(loc[-1]) in moved:
        return f" ({moved[str(loc[-1])]})"
    return suggestion(str(loc[-1]), parent.model_fields)


def _label(model: type[BaseModel]) -> str:
    """What a record type holds, in words: ``SpaceRecord`` -> space, ``QuantCatalogRecord`` -> quant catalog."""
    return " ".join(word.lower() for word in re.findall(r"[A-Z][a-z0-9]*", model.__name__.removesuffix("Record")))


def _not_a_mapping(data: Any) -> str:
    """What a document holds instead of a mapping of keys."""
    if data is None:
        return "the file is empty (nothing but comments, or null)"
    if isinstance(data, list):
        return "got a list"
    shown = repr(data) if len(repr(data)) <= 40 else repr(data)[:37] + "..."
    return f"got {'text' if isinstance(data, str) else 'a single value'} ({shown})"


def validate(model: type[ModelT], data: Any, *, source: str, path: Path | None = None) -> ModelT:
    """Validate ``data`` against a pydantic model; report every problem with its field path."""
    what = _label(model)
    if not isinstance(data, dict | model):
        raise InputError(f"{_not_a_mapping(data)}; expected a mapping of the {what}'s keys (key: value)", source=source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if not str(part).startswith(("function-", "tag:"))]
            field = ".".join(str(part) for part in loc) or "(top level)"
            line = _yaml_line(path, loc)
            where = f"line {line}: " if line else ""
            if error["type"] == "extra_forbidden":
                hint = _unknown_key_hint(model, loc)
                lines.append(f"{where}{field}: unknown key{hint}")
            else:
                got = error.get("input")
                shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
                message = str(error["msg"]).removeprefix("Value error, ")
                lines.append(f"{where}{field}: {message}{shown}")
        raise InputError(f"invalid {what}:\n  " + "\n  ".join(lines), source=source) from None
