"""Dependency levels of a turn's calls: what may go together, what must wait, what execution forbids."""

from __future__ import annotations

from envfactory_dagster.export.chat_messages import call_dependencies, call_groups, shown_arguments
from envfactory_dagster.querygen.masking import SAME_OUTCOME
from envfactory_dagster.querygen.trajectory_model import GoldCall, Turn
from tests.fakes.refine_fixtures import SHOP, USER, out


def call(tool: str, arguments: dict, output: dict, sources: dict | None = None) -> GoldCall:
    return GoldCall(
        env_id=SHOP, tool=tool, arguments=arguments, output=output, argument_sources=sources or {}
    )


def test_sources_and_first_shown_ids_make_dependencies() -> None:
    turn = Turn(
        index=2,
        query="cancel Ada's pending order",
        calls=[
            call("search_customers", {"name": "Ada"}, {"customers": [{"id": "cus_0001"}]}, {"name": USER}),
            # recorded as user-given, but the id first appears in call 0's output: still a dependency
            call(
                "list_orders",
                {"customer_id": "cus_0001"},
                {"orders": [{"id": "ord_0001"}]},
                {"customer_id": USER},
            ),
            call(
                "cancel_order",
                {"order_id": "ord_0001"},
                {"order": {"id": "ord_0001"}},
                {"order_id": out(2, 1, "orders[0].id")},
            ),
            call("get_order", {"order_id": "ord_0009"}, {"order": {"id": "ord_0009"}}, {"order_id": USER}),
        ],
    )
    needs = call_dependencies(turn, shown_before="earlier messages mention ord_0009")
    assert needs == [set(), {0}, {1}, set()]
    # an id shown before the turn is no dependency, even if an output of the turn repeats it
    assert call_dependencies(turn, shown_before="cus_0001")[1] == set()


def test_levels_group_independent_calls_when_the_order_is_safe() -> None:
    needs = [set(), {0}, {1}, set()]
    assert call_groups(needs, lambda order: True) == [[0, 3], [1], [2]]


def test_a_reorder_execution_rejects_keeps_the_recorded_order() -> None:
    needs = [set(), {0}, {1}, set()]
    refused: list[list[int]] = []

    def order_ok(order: list[int]) -> bool:
        refused.append(order)
        return False

    assert call_groups(needs, order_ok) == [[0], [1], [2, 3]]
    assert refused == [[0, 3, 1, 2]]
    # the recorded order is never questioned
    assert call_groups([set(), set(), {1}], lambda order: False) == [[0, 1], [2]]


def _masked(arguments: dict, reasons: dict[str, str]) -> GoldCall:
    return call("list_orders", arguments, {"orders": []}).model_copy(
        update={"masked_arguments": sorted(reasons), "masked_reasons": reasons}
    )


def test_an_unasked_filter_that_filtered_nothing_is_left_out_of_the_assistant_call() -> None:
    presentation = "a presentation setting: without it the call makes the same state change ..."
    gold = _masked({"status": "refunded", "limit": 1}, {"status": SAME_OUTCOME, "limit": presentation})
    # the user never said "refunded": the call drops it; the limit stays (the output shown depends on it)
    assert shown_arguments(gold, "show me the first order") == {"limit": 1}
    # said by the user: kept as asked
    assert shown_arguments(gold, "show me the first refunded order") == {"status": "refunded", "limit": 1}
    # two such arguments were proven one at a time, never together: both stay
    two = _masked(
        {"status": "refunded", "currency": "EUR"}, {"status": SAME_OUTCOME, "currency": SAME_OUTCOME}
    )
    assert shown_arguments(two, "show me my orders") == two.arguments
