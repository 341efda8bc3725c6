"""Turn core metric dicts into Dagster metadata values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def as_metadata(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars stay as they are; dicts and lists become JSON metadata."""
    return {
        key: dg.MetadataValue.json(value) if isinstance(value, (dict, list, tuple)) else value
        for key, value in metrics.items()
        if value is not None
    }
