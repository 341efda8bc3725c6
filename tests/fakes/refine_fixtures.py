"""Registry rows and executed trajectories over tests/fakes/example_env.py (fixtures for refine/export).

Trajectories are built by running real calls on the environments (so they replay), with
over-specified queries as a naive template would write them. A second environment class
(`OutletOrders`, the same module renamed) makes multi-environment tasks with clashing tool names.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from envfactory_dagster.lineage import content_id, sha256_hex
from envfactory_dagster.querygen.execution import counter_changes, state_diff
from envfactory_dagster.querygen.trajectory_model import ArgumentSource, GoldCall, Trajectory, Turn
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC

SHOP = "env_shop_v1"
OUTLET = "env_outlet_v1"


def _env_row(env_id: str, class_name: str, title: str, lookalike_tags: list[str]) -> dict[str, Any]:
    source = EXAMPLE_ENV_SOURCE.replace("ShopOrders", class_name)
    spec = EXAMPLE_SPEC.model_copy(
        update={"class_name": class_name, "title": title, "resource_ids": [f"res_{class_name.lower()}"]}
    )
    return {
        "env_id": env_id,
        "domain": "commerce",
        "class_name": class_name,
        "source": source,
        "code_sha256": sha256_hex(source),
        "spec_json": spec.model_dump_json(),
        "seed_state_json": json.dumps(EXAMPLE_SEED_STATE),
        "resource_ids": [f"res_{class_name.lower()}"],
        "lookalike_tags": lookalike_tags,
    }


def env_rows() -> list[dict[str, Any]]:
    """`verified_envs` rows: the shop (tagged as a tau2 retail look-alike) and the outlet."""
    return [
        _env_row(SHOP, "ShopOrders", "the web shop", ["tau2:retail"]),
        _env_row(OUTLET, "OutletOrders", "the outlet store", []),
    ]


def out(turn: int, call: int, path: str) -> ArgumentSource:
    return ArgumentSource(kind="output", turn=turn, call=call, path=path)


USER = ArgumentSource(kind="user")

# a planned call: (env_id, tool, arguments, argument sources); a planned turn: (query, calls)
PlannedCall = tuple[str, str, dict[str, Any], dict[str, ArgumentSource]]


def execute_trajectory(
    plan: list[tuple[str, list[PlannedCall]]], *, chain_id: str, seed: int, env_ids: list[str] | None = None
) -> Trajectory:
    """Run the planned calls from the seed states and record outputs, state diffs and final states."""
    rows = {row["env_id"]: row for row in env_rows()}
    env_ids = env_ids or sorted({call[0] for _, calls in plan for call in calls})
    instances = {e: VerifiedEnvironment.from_row(rows[e]).instance() for e in env_ids}
    initial = {e: inst.dump_state() for e, inst in instances.items()}
    turns = []
    for index, (query, calls) in enumerate(plan):
        gold = []
        for env_id, tool, arguments, sources in calls:
            before = copy.deepcopy(instances[env_id].state)
            output = instances[env_id].call(tool, copy.deepcopy(arguments))
            after = instances[env_id].state
            gold.append(
                GoldCall(
                    env_id=env_id,
                    tool=tool,
                    arguments=arguments,
                    output=output,
                    argument_sources=sources,
                    state_diff=state_diff(before, after),
                    counter_changes=counter_changes(before["counters"], after["counters"]),
                )
            )
        turns.append(Turn(index=index, query=query, calls=gold, answer="Done."))
    final = {e: inst.dump_state() for e, inst in instances.items()}
    calls_key = [[(c.env_id, c.tool, c.arguments) for c in t.calls] for t in turns]
    return Trajectory(
        id=content_id([env_ids, initial, calls_key], "trj_"),
        domain="commerce",
        chain_id=chain_id,
        seed=seed,
        env_ids=env_ids,
        env_worlds={e: e for e in env_ids},  # the fixture environments declare no world: each is its own
        initial_states=initial,
        turns=turns,
        final_states=final,
        persona="A shop manager tidying up customer orders.",
    )


def sample_trajectories() -> list[Trajectory]:
    """Four executed trajectories: lookups feeding writes, user-given ids, a read-only one, two envs."""
    lookups_then_writes = execute_trajectory(
        [
            (
                "Search customers named Ada, list the orders of customer cus_0001 and cancel order ord_0001.",
                [
                    (SHOP, "search_customers", {"name": "Ada"}, {"name": USER}),
                    (
                        SHOP,
                        "list_orders",
                        {"customer_id": "cus_0001"},
                        {"customer_id": out(0, 0, "customers[0].id")},
                    ),
                    (SHOP, "cancel_order", {"order_id": "ord_0001"}, {"order_id": out(0, 1, "orders[0].id")}),
                ],
            ),
            (
                "Create an order for customer cus_0001 with total 25.0 and then get order ord_0005.",
                [
                    (
                        SHOP,
                        "create_order",
                        {"customer_id": "cus_0001", "total": 25.0},
                        {"customer_id": out(0, 0, "customers[0].id"), "total": USER},
                    ),
                    (SHOP, "get_order", {"order_id": "ord_0005"}, {"order_id": out(1, 0, "order.id")}),
                ],
            ),
        ],
        chain_id="chain_a",
        seed=1,
    )
    user_ids = execute_trajectory(
        [
            (
                "Get order ord_0003 and cancel order ord_0003.",
                [
                    (SHOP, "get_order", {"order_id": "ord_0003"}, {"order_id": USER}),
                    (SHOP, "cancel_order", {"order_id": "ord_0003"}, {"order_id": USER}),
                ],
            ),
        ],
        chain_id="chain_b",
        seed=2,
    )
    read_only = execute_trajectory(
        [
            (
                "List the paid orders of customer cus_0002.",
                [
                    (
                        SHOP,
                        "list_orders",
                        {"customer_id": "cus_0002", "status": "paid"},
                        {"customer_id": USER, "status": USER},
                    )
                ],
            ),
        ],
        chain_id="chain_c",
        seed=3,
    )
    two_envs = execute_trajectory(
        [
            (
                "Search customers named Grace and create an order for customer cus_0003 "
                "with total 12.5 at the outlet.",
                [
                    (SHOP, "search_customers", {"name": "Grace"}, {"name": USER}),
                    (
                        OUTLET,
                        "create_order",
                        {"customer_id": "cus_0003", "total": 12.5},
                        {"customer_id": out(0, 0, "customers[0].id"), "total": USER},
                    ),
                ],
            ),
        ],
        chain_id="chain_d",
        seed=4,
    )
    return [lookups_then_writes, user_ids, read_only, two_envs]


def trajectory_rows(trajectories: list[Trajectory]) -> list[dict[str, Any]]:
    """`trajectories` rows: the JSON plus flat lineage columns."""
    return [
        {
            "id": t.id,
            "domain": t.domain,
            "chain_id": t.chain_id,
            "env_ids": t.env_ids,
            "resource_ids": [f"res_{e.split('_')[1]}" for e in t.env_ids],
            "seed": t.seed,
            "trajectory_json": t.model_dump_json(),
        }
        for t in trajectories
    ]
