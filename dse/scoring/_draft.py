"""Speculative decoding's draft: what it costs per step and what it stores (docs/cost-model.md §17).

``draft`` is ``mtp`` (the model's own multi-token-prediction module, DeepSeek-V3 arXiv 2412.19437 §2.2: one
decoder layer, a 2h x h projection and the shared embedding and output head; an EAGLE head, Li et al. 2024,
has the same shape), a catalog model id or model file (a separate draft model, same tokenizer), or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from dse import units
from dse.catalog import ModelSpec, load_model
from dse.costmodel import Candidates, parameter_counts
from dse.errors import InputError
from dse.scoring._build import architecture, factorize

MTP = "mtp"


def _counts(model: ModelSpec) -> tuple[float, float]:
    """(active parameters, parameters of one decoder layer plus the MTP projection)."""
    arch = architecture(model)
    total, active = parameter_counts(arch)
    h, V = arch.hidden_size, arch.vocab_size
    ends = h * V * (1 if arch.tie_word_embeddings else 2)  # embedding and LM head
    return active, (total - ends) / arch.num_layers + 2.0 * h * h


def draft_figures(model: ModelSpec, draft: str | None) -> tuple[float, float]:
    """(the draft's step over the target's decode step, the draft's parameters it adds to memory). A draft
    step reads the draft's active weights once, as a decode step reads the target's: the ratio of active
    parameters. ``mtp``: one average decoder layer and the output head per draft token; it stores one layer
    and its projection (the embedding and head are shared)."""
    if draft is None:
        return 0.0, 0.0
    active, layer = _counts(model)
    if draft == MTP:
        arch = architecture(model)
        head = arch.hidden_size * arch.vocab_size
        return ((active - head) / arch.num_layers + head) / active, layer
    try:
        drafted = architecture(load_model(draft))
    except InputError as error:  # name the input the id came from
        raise InputError(str(error).removeprefix("model: "), field="draft") from None
    draft_total, draft_active = parameter_counts(drafted)
    vocabulary = architecture(model).vocab_size
    if drafted.vocab_size != vocabulary:
        raise InputError(
            f"draft {draft!r} has a vocabulary of {drafted.vocab_size:,} tokens, the model {vocabulary:,}: a draft "
            "must share the target's tokenizer",
            field="draft",
        )
    return draft_active / active, draft_total


def with_draft(model: ModelSpec, cand: Candidates, drafts: Sequence[Any] | None) -> Candidates:
    """``cand`` with each row's draft resolved: its cost ratio, and its weights per device (stored in the
    target's weight format, sharded like it over tp x pp)."""
    if drafts is None:
        return cand
    codes, values = factorize(drafts)
    table = np.asarray([draft_figures(model, None if v is None else str(v)) for v in values]).reshape(-1, 2)
    ratio, params = table[codes, 0], table[codes, 1]
    per_device = params * units.bits_to_bytes(cand.weight_bits) / (cand.tp * cand.pp)
    return replace(cand, draft_cost_ratio=ratio, draft_weight_bytes=per_device)
