"""Masked arguments: values of a gold call that do not change the outcome, decided by execution.

A candidate is an optional argument that controls presentation rather than what is done
(`$limit`-bound inputs, pagination, sorting, formatting: `MASKABLE_NAMES`). It is masked when the
call, run again from the same state without it, makes the same state change and gives the same
values at every output path a later call of the trajectory reads. The rollout reward then does not
require the agent to repeat it, and refinement does not need the user to state it. Each masked
argument keeps its reason. This runs inside trajectory execution (one extra call per candidate
from the call's own snapshot), so no stage replays a trajectory to decide it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from envfactory_dagster.envgen.env_spec import ToolSpec
from envfactory_dagster.querygen.replay import read_path
from envfactory_dagster.runtime.contract import ToolError

MASKABLE_NAMES = frozenset(
    {
        "limit",
        "page",
        "page_size",
        "per_page",
        "offset",
        "cursor",
        "page_token",
        "max_results",
        "sort",
        "sort_by",
        "order_by",
        "sort_order",
        "format",
        "fields",
        "verbose",
        "include",
        "expand",
        "pretty",
    }
)


def mask_candidates(tool: ToolSpec, arguments: Mapping[str, Any]) -> list[str]:
    required = set(tool.input_schema.get("required", []))
    return sorted(
        a
        for a in arguments
        if a not in required
        and (
            a in MASKABLE_NAMES
            or (tool.param_fields.get(a, "").startswith("$") and tool.param_fields[a] != "$query")
        )
    )


def confirm_masks(
    tool: ToolSpec,
    arguments: Mapping[str, Any],
    output: Mapping[str, Any],
    diff: Mapping[str, Any],
    used_paths: list[str],
    rerun: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
) -> dict[str, str]:
    """argument -> reason, for the candidates whose omission changes nothing that matters.

    `rerun(arguments)` calls the tool again from the call's own starting state and returns
    (output, state diff); `used_paths` are the output paths later calls read."""
    masked: dict[str, str] = {}
    for argument in mask_candidates(tool, arguments):
        reduced = {k: v for k, v in arguments.items() if k != argument}
        try:
            other_output, other_diff = rerun(reduced)
        except ToolError:
            continue
        if other_diff != diff:
            continue
        try:
            same = all(read_path(other_output, p) == read_path(output, p) for p in used_paths)
        except (KeyError, IndexError, TypeError, ValueError):
            same = False
        if same:
            masked[argument] = (
                "without it the call makes the same state change and gives the same values "
                f"at the {len(used_paths)} output path(s) later calls read"
            )
    return masked
