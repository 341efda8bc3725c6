"""The EnvSpec and a seed state that tests/fakes/example_env.py implements (a fixture for verification)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, StateTransition, ToolSpec
from tests.fakes import example_env

EXAMPLE_ENV_SOURCE = Path(example_env.__file__).read_text(encoding="utf-8")


def _tool(method_name: str, **fields: Any) -> ToolSpec:
    tool_def = example_env.ShopOrders.TOOLS[method_name]
    return ToolSpec(
        name=tool_def.name,
        description=tool_def.description,
        kind=tool_def.kind,
        input_schema=tool_def.input_schema,
        output_schema=tool_def.output_schema,
        **fields,
    )


STATUSES = ["pending", "paid", "shipped", "cancelled"]

EXAMPLE_SPEC = EnvSpec(
    class_name="ShopOrders",
    title="Shop orders",
    description="Order desk of a small web shop.",
    domain="commerce",
    entities=[
        EntitySpec(
            name="Customer",
            collection="customers",
            id_prefix="cus_",
            fields=[
                FieldSpec(name="id", type="string"),
                FieldSpec(name="name", type="string"),
                FieldSpec(name="email", type="string", format="email"),
                FieldSpec(name="city", type="string"),
            ],
        ),
        EntitySpec(
            name="Order",
            collection="orders",
            id_prefix="ord_",
            status_field="status",
            fields=[
                FieldSpec(name="id", type="string"),
                FieldSpec(name="customer_id", type="string", ref_entity="Customer"),
                FieldSpec(name="total", type="number", minimum=0),
                FieldSpec(name="status", type="string", enum=STATUSES),
                FieldSpec(name="created_at", type="string", format="date-time"),
            ],
        ),
    ],
    tools=[
        _tool("search_customers", action="search", entity="Customer", param_fields={"name": "name"}),
        _tool(
            "list_orders",
            action="list",
            entity="Order",
            param_fields={"customer_id": "customer_id", "status": "status"},
        ),
        _tool("get_order", action="get", entity="Order", param_fields={"order_id": "id"}),
        _tool(
            "create_order",
            action="create",
            entity="Order",
            param_fields={"customer_id": "customer_id", "total": "total"},
        ),
        _tool(
            "cancel_order",
            action="transition",
            entity="Order",
            param_fields={"order_id": "id"},
            transition=StateTransition(field="status", from_values=["pending", "paid"], to_value="cancelled"),
        ),
    ],
    seed_rows={"customers": 3, "orders": 4},
)

EXAMPLE_SEED_STATE: dict[str, Any] = {
    "customers": {
        "cus_0001": {"id": "cus_0001", "name": "Ada Lovelace", "email": "ada@example.com", "city": "London"},
        "cus_0002": {
            "id": "cus_0002",
            "name": "Alan Turing",
            "email": "alan@example.com",
            "city": "Wilmslow",
        },
        "cus_0003": {
            "id": "cus_0003",
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "city": "Arlington",
        },
    },
    "orders": {
        "ord_0001": {
            "id": "ord_0001",
            "customer_id": "cus_0001",
            "total": 42.5,
            "status": "pending",
            "created_at": "2026-01-10T10:00:00Z",
        },
        "ord_0002": {
            "id": "ord_0002",
            "customer_id": "cus_0001",
            "total": 10.0,
            "status": "shipped",
            "created_at": "2026-01-11T11:00:00Z",
        },
        "ord_0003": {
            "id": "ord_0003",
            "customer_id": "cus_0002",
            "total": 99.9,
            "status": "paid",
            "created_at": "2026-01-12T12:00:00Z",
        },
        "ord_0004": {
            "id": "ord_0004",
            "customer_id": "cus_0003",
            "total": 5.0,
            "status": "cancelled",
            "created_at": "2026-01-13T13:00:00Z",
        },
    },
    "counters": {"orders": 4, "customers": 3},
    "now": "2026-01-15T09:00:00Z",
    "seed": 7,
}
