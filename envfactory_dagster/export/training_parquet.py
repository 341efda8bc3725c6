"""The Arrow schemas of the training Parquet files, and their writer.

One schema per export kind, the same for every file of every domain, so any set of files
concatenates (`datasets.load_dataset("parquet", data_files=[...])`, verl's `concatenate_datasets`).
Values whose shape varies from row to row (tool-call arguments, tool JSON Schemas, verl's
`tools_kwargs`, states, ground truth) are Arrow `json` extension columns: Parquet stores JSON
text, `datasets` (>= 5.2) reads them back as `Json()` features and hands each row its own dict —
no struct that null-fills keys a row does not have — and DuckDB reads them as its JSON type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

JSON = pa.json_()
TOOL_CALL = pa.struct(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("function", pa.struct([("name", pa.string()), ("arguments", JSON)])),
    ]
)
# OpenAI / HF chat message; keys a message does not have are null (`tool_calls` of a user message)
MESSAGE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.string()),
        ("tool_calls", pa.list_(TOOL_CALL)),
        ("tool_call_id", pa.string()),
    ]
)
LINEAGE_FIELDS = [
    ("id", pa.string()),
    ("trajectory_id", pa.string()),
    ("domain", pa.string()),
    ("chain_id", pa.string()),
    ("split", pa.string()),
    ("pool", pa.string()),
    ("env_ids", pa.list_(pa.string())),
    ("resource_ids", pa.list_(pa.string())),
]
SFT_SCHEMA = pa.schema(
    [
        ("messages", pa.list_(MESSAGE)),
        ("tools", pa.list_(JSON)),
        *LINEAGE_FIELDS,
        ("n_turns", pa.int32()),
        ("n_calls", pa.int32()),
        ("backend", pa.string()),
        ("answer_backend", pa.string()),
    ]
)
VERL_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(MESSAGE)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", JSON)])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("split", pa.string()),
                    ("pool", pa.string()),
                    ("task_id", pa.string()),
                    ("trajectory_id", pa.string()),
                    ("turn", pa.int32()),
                    ("env_ids", pa.list_(pa.string())),
                    ("tools_kwargs", JSON),
                    ("interaction_kwargs", pa.struct([("name", pa.string()), ("task_id", pa.string())])),
                    ("tools", pa.list_(JSON)),
                    ("initial_states", JSON),
                    ("gold_final_states", JSON),
                    ("reward_spec", JSON),
                    ("user_tools", pa.list_(JSON)),
                    ("user_calls", JSON),
                ]
            ),
        ),
        ("agent_name", pa.string()),
        ("split", pa.string()),
        ("pool", pa.string()),
    ]
)


def _storage_type(data_type: pa.DataType) -> pa.DataType:
    """`data_type` with every json extension replaced by its string storage (for building)."""
    if isinstance(data_type, pa.BaseExtensionType):
        return data_type.storage_type
    if pa.types.is_struct(data_type):
        return pa.struct([pa.field(f.name, _storage_type(f.type), f.nullable) for f in data_type])
    if pa.types.is_list(data_type):
        return pa.list_(_storage_type(data_type.value_type))
    return data_type


def write_training_parquet(records: Iterable[Mapping[str, Any]], schema: pa.Schema, path: str | Path) -> int:
    """Write `records` (json columns given as JSON text) with exactly `schema`; returns the row count."""
    storage = pa.schema([pa.field(f.name, _storage_type(f.type), f.nullable) for f in schema])
    table = pa.Table.from_pylist(list(records), schema=storage).cast(schema)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table.num_rows
