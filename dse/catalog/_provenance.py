"""Where a figure came from: every group of catalog numbers carries one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Confidence = Literal["verified", "datasheet", "derived", "estimate", "low"]
"""How far a figure can be trusted.

- ``verified``: read from the vendor's page or datasheet, or a primary source, at ``as_of``;
- ``datasheet``: the vendor's standard figure, not re-read at ``as_of``;
- ``derived``: arithmetic on cited figures (e.g. half of a sparse headline figure); the note says how;
- ``estimate``: a reasoned estimate from indirect sources; the note says how;
- ``low``: conflicting or unofficial sources.
"""


class Provenance(BaseModel):
    """Source, date and confidence of one group of figures."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    source: str = Field(min_length=1, description="document, page or paper the figures were read from")
    as_of: str = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", description="date read (YYYY, YYYY-MM or YYYY-MM-DD)")
    confidence: Confidence
    note: str | None = None
