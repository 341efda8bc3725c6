"""Masked arguments: values of a gold call that do not change the outcome, decided by execution.

Every optional argument is a candidate; the call is run again from its own starting state
without it, and it is masked when
- the call makes the same state change and gives a byte-identical output (a filter that filters
  nothing, a value that restates a default), or
- it controls presentation rather than what is done (`$limit`-bound inputs, pagination, sorting,
  formatting: `MASKABLE_NAMES`) and the call makes the same state change and gives the same values
  at every output path a later call of the trajectory reads.
The rollout reward then does not require the agent to repeat it, and refinement does not need the
user to state it. Each masked argument keeps its reason. This runs inside trajectory execution
(one extra call per candidate from the call's own snapshot), so no later stage re-executes
anything to decide it.
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


SAME_OUTCOME = "without it the call gives the same output and the same state change"


def presentation_knob(tool: ToolSpec, argument: str) -> bool:
    """Pagination, sorting or formatting: how results are shown, not what is done."""
    binding = tool.param_fields.get(argument, "")
    return argument in MASKABLE_NAMES or (binding.startswith("$") and binding != "$query")


def confirm_masks(
    tool: ToolSpec,
    arguments: Mapping[str, Any],
    output: Mapping[str, Any],
    diff: Mapping[str, Any],
    used_paths: list[str],
    rerun: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
) -> dict[str, str]:
    """argument -> reason, for the optional arguments whose omission changes nothing that matters.

    `rerun(arguments)` calls the tool again from the call's own starting state and returns
    (output, state diff); `used_paths` are the output paths later calls read."""
    required = set(tool.input_schema.get("required", []))
    masked: dict[str, str] = {}
    for argument in sorted(a for a in arguments if a not in required):
        reduced = {k: v for k, v in arguments.items() if k != argument}
        try:
            other_output, other_diff = rerun(reduced)
        except ToolError:
            continue
        if other_diff != diff:
            continue
        if other_output == output:
            masked[argument] = SAME_OUTCOME
            continue
        if not presentation_knob(tool, argument):
            continue
        try:
            same = all(read_path(other_output, p) == read_path(output, p) for p in used_paths)
        except (KeyError, IndexError, TypeError, ValueError):
            same = False
        if same:
            masked[argument] = (
                "a presentation setting: without it the call makes the same state change and gives the "
                f"same values at the {len(used_paths)} output path(s) later calls read"
            )
    return masked
