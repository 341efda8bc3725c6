"""Masked arguments are decided by execution: re-running the call without one from its own state."""

from __future__ import annotations

import copy
import json

from envfactory_dagster.querygen.execution import state_diff
from envfactory_dagster.querygen.masking import confirm_masks
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from tests.fakes.refine_fixtures import SHOP, env_rows


def _shop() -> VerifiedEnvironment:
    return next(VerifiedEnvironment.from_row(r) for r in env_rows() if r["env_id"] == SHOP)


def _masks(arguments: dict, used_paths: list[str]) -> dict[str, str]:
    env = _shop()
    tool = next(t for t in env.spec.tools if t.name == "list_orders")
    instance = env.instance()
    before = copy.deepcopy(instance.state)
    output = instance.call("list_orders", dict(arguments))
    diff = state_diff(before, instance.state)

    def rerun(reduced: dict) -> tuple[dict, dict]:
        again = env.instance(copy.deepcopy(before))
        result = json.loads(json.dumps(again.call("list_orders", reduced)))
        return result, state_diff(before, again.state)

    return confirm_masks(tool, arguments, output, diff, used_paths, rerun)


def test_a_filter_that_filters_nothing_is_masked_with_its_reason() -> None:
    # customer cus_0002 has paid orders only: the status filter changes no output, no state
    masks = _masks({"customer_id": "cus_0002", "status": "paid"}, [])
    assert list(masks) == ["status"] and "same output" in masks["status"]


def test_a_filter_that_changes_the_output_stays_and_required_inputs_are_never_candidates() -> None:
    # cus_0001 has orders in several states: without the filter the output differs
    assert _masks({"customer_id": "cus_0001", "status": "paid"}, []) == {}
    assert "customer_id" not in _masks({"customer_id": "cus_0002", "status": "paid"}, [])
