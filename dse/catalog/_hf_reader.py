"""Typed key access and shared field groups for reading Hugging Face ``config.json`` files.

``Reader`` gives typed, error-naming access to one config mapping; the helpers here turn per-layer flags into
``LayerSet`` patterns and read the Llama-style fields most families share. Used by ``_hf_families``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dse.catalog._model import LayerSet
from dse.errors import InputError

Fields = dict[str, Any]
"""Keyword fields of a ``ModelRecord`` under construction."""
_MISSING: Any = object()

_ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "swiglu": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_tanh": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
}
"""HF ``hidden_act`` names -> our activation (``gelu_new``/``gelu_pytorch_tanh`` are the tanh approximation)."""


@dataclass(frozen=True)
class Reader:
    """Typed access to one (possibly nested) config mapping; errors name the file and the dotted key."""

    data: Mapping[str, Any]
    source: str
    prefix: str = ""

    def error(self, key: str, message: str) -> InputError:
        """An ``InputError`` for ``key`` of this mapping."""
        return InputError(message, source=self.source, field=self.prefix + key)

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not null."""
        return self.data.get(key) is not None

    def _get(self, key: str, default: Any) -> tuple[Any, bool]:
        """(value, found): ``default`` when absent or null; a required key (no default) must be present."""
        value = self.data.get(key)
        if value is not None:
            return value, True
        if default is _MISSING:
            raise self.error(key, "required key is missing (or null)")
        return default, False

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> Any:
        """An integer >= ``minimum`` (JSON booleans rejected); ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(key, f"expected an integer, got {type(value).__name__} {value!r}")
        if found and value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        """A JSON boolean; ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {type(value).__name__} {value!r}")
        return value

    def string(self, key: str, default: Any = _MISSING) -> Any:
        """A string; ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type(value).__name__} {value!r}")
        return value

    def array(self, key: str, default: Any = _MISSING) -> Any:
        """A JSON array; ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and not isinstance(value, list):
            raise self.error(key, f"expected a list, got {type(value).__name__} {value!r}")
        return value

    def indices(self, key: str, default: Any = _MISSING) -> set[int]:
        """A JSON array of non-negative layer indices, as a set."""
        values = self.array(key, default)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise self.error(key, f"expected a list of layer indices (integers >= 0), got {values!r}")
        return set(values)

    def nested(self, key: str) -> Reader:
        """A reader for the sub-object ``key`` (e.g. ``text_config``)."""
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected an object, got {type(value).__name__}")
        return Reader(value, self.source, f"{self.prefix}{key}.")


# --- layer patterns -----------------------------------------------------------------------------------------------


def layer_set_from_members(members: Sequence[bool]) -> LayerSet | None:
    """The smallest ``LayerSet`` whose members are exactly the True layers; None when there are none.

    A pattern counts as periodic only when its period repeats at least twice over the layers it covers;
    otherwise this raises ``ValueError`` (the caller turns it into an ``InputError``).
    """
    n = len(members)
    first = next((i for i, m in enumerate(members) if m), None)
    if first is None:
        return None
    for period in range(1, n + 1):
        for start in (0, first):
            if period > 1 and 2 * period > n - start:
                continue
            offsets = sorted({i % period for i in range(start, n) if members[i]})
            if all(members[i] == (i >= start and i % period in offsets) for i in range(n)):
                return LayerSet(start=start, period=period, offsets=offsets)
    raise ValueError("the layer pattern is not periodic")


def layer_pattern(r: Reader, key: str, members: Sequence[bool]) -> LayerSet | None:
    """``layer_set_from_members`` with errors reported against ``key``."""
    try:
        return layer_set_from_members(members)
    except ValueError as exc:
        raise r.error(key, f"{exc}; expected a repeating pattern (start, period, offsets)") from None


def layers_of_type(r: Reader, num_layers: int, wanted: str) -> LayerSet | None:
    """Layers whose ``layer_types`` entry equals ``wanted`` (e.g. ``sliding_attention``)."""
    types = r.array("layer_types")
    known = {"sliding_attention", "full_attention", "chunked_attention"}
    if len(types) != num_layers or any(t not in known for t in types):
        raise r.error("layer_types", f"expected {num_layers} entries from {sorted(known)}, got {types!r}")
    return layer_pattern(r, "layer_types", [t == wanted for t in types])


def window_fields(window: int | None, layers: LayerSet | None) -> Fields:
    """``sliding_window`` fields: both set, or neither."""
    if window is None or layers is None:
        return {}
    return {"sliding_window": window, "sliding_window_layers": layers}


def window_from_layer_types(r: Reader, n: int, key: str = "sliding_window", default: Any = _MISSING) -> Fields:
    """Sliding window read from ``layer_types`` (transformers >= 4.53 writes it for several families)."""
    return window_fields(r.integer(key, default), layers_of_type(r, n, "sliding_attention"))


# --- shared field groups -------------------------------------------------------------------------------------------


def activation(r: Reader, *keys: str, default: str = "silu") -> str:
    """Our activation name from the first present key of ``keys`` (HF ``hidden_act`` and friends)."""
    key = next((k for k in keys if r.has(k)), keys[0])
    name = r.string(key, default)
    if name not in _ACTIVATIONS:
        raise r.error(key, f"unsupported activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def core_fields(r: Reader, *, tie_default: bool = False) -> Fields:
    """Llama-style dimensions. head_dim = ``head_dim`` if present, else hidden_size / num_attention_heads."""
    hidden = r.integer("hidden_size")
    heads = r.integer("num_attention_heads")
    if not r.has("head_dim") and hidden % heads:
        raise r.error("head_dim", f"missing, and hidden_size {hidden} is not a multiple of {heads} heads")
    return {
        "hidden_size": hidden,
        "num_layers": r.integer("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": r.integer("num_key_value_heads", heads),
        "head_dim": r.integer("head_dim", hidden // heads),
        "vocab_size": r.integer("vocab_size"),
        "max_position_embeddings": r.integer("max_position_embeddings"),
        "tie_word_embeddings": r.boolean("tie_word_embeddings", tie_default),
    }


def llama_ffn_fields(r: Reader) -> Fields:
    """Gated FFN with ``intermediate_size``; ``attention_bias`` (q, k, v, o) and ``mlp_bias`` flags (LlamaConfig)."""
    return {
        "intermediate_size": r.integer("intermediate_size"),
        "ffn_activation": activation(r, "hidden_act"),
        "attention_bias": "all" if r.boolean("attention_bias", False) else "none",
        "mlp_bias": r.boolean("mlp_bias", False),
    }
