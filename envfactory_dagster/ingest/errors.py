"""The one error a parser raises: which file, why, and which kind of bad input it is."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# The fixed vocabulary of `error_kind` in the `resource_errors` table.
ErrorKind = Literal[
    "unreadable",
    "too_large",
    "empty_file",
    "not_utf8",
    "invalid_json",
    "invalid_yaml",
    "unknown_format",
    "invalid_spec",
    "external_ref",
    "unresolved_ref",
    "circular_ref",
    "duplicate_operation_id",
    "no_operations",
    "internal_error",  # a parser bug met on this file: recorded with its exception, not hidden
]


class ResourceParseError(Exception):
    """An authentic resource file that cannot become a `NormalizedSpec`.

    `reason` is a sentence a person can act on; `kind` classifies it for counts and filters.
    """

    def __init__(self, path: Path | str, reason: str, kind: ErrorKind = "invalid_spec") -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.kind: ErrorKind = kind


class SpecError(Exception):
    """Raised inside a parser, where the file path is not known; `parse_resource_file` adds it."""

    def __init__(self, reason: str, kind: ErrorKind = "invalid_spec") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind: ErrorKind = kind
