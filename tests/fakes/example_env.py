"""A hand-written environment in the exact shape code generation emits (a fixture for tests).

Two entities (Customer, Order with a foreign key), reads, writes and a state transition.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.runtime.contract import Environment, ToolError, tool


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    email: str
    city: str


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    customer_id: str
    total: float = Field(ge=0)
    status: Literal["pending", "paid", "shipped", "cancelled"]
    created_at: str


class State(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: dict[str, Customer] = Field(default_factory=dict)
    orders: dict[str, Order] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)
    now: str = "2026-01-15T09:00:00Z"
    seed: int = 0


ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "customer_id": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "status": {"type": "string", "enum": ["pending", "paid", "shipped", "cancelled"]},
        "created_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "customer_id", "total", "status", "created_at"],
}
CUSTOMER_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "city": {"type": "string"},
    },
    "required": ["id", "name", "email", "city"],
}


class ShopOrders(Environment):
    """Order desk of a small web shop: look up customers and orders, place, pay and cancel orders."""

    STATE_MODEL = State
    __slots__ = ()

    @tool(
        kind="read",
        description="Find customers whose name contains the given text.",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "required": ["name"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"customers": {"type": "array", "items": CUSTOMER_SCHEMA}},
            "required": ["customers"],
        },
    )
    def search_customers(self, name: str) -> dict[str, Any]:
        needle = name.lower()
        rows = [dict(r) for r in self.table("customers").values() if needle in r["name"].lower()]
        return {"customers": rows}

    @tool(
        kind="read",
        description="List the orders of a customer, optionally only those with a given status.",
        input_schema={
            "type": "object",
            "properties": {
                "customer_id": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "paid", "shipped", "cancelled"]},
            },
            "required": ["customer_id"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"orders": {"type": "array", "items": ORDER_SCHEMA}},
            "required": ["orders"],
        },
    )
    def list_orders(self, customer_id: str, status: str | None = None) -> dict[str, Any]:
        self.require("customers", customer_id, "Customer")
        rows = [
            dict(r)
            for r in self.table("orders").values()
            if r["customer_id"] == customer_id and (status is None or r["status"] == status)
        ]
        return {"orders": rows}

    @tool(
        kind="read",
        description="Get one order by its id.",
        input_schema={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"order": ORDER_SCHEMA}, "required": ["order"]},
    )
    def get_order(self, order_id: str) -> dict[str, Any]:
        return {"order": dict(self.require("orders", order_id, "Order"))}

    @tool(
        kind="write",
        description="Place a new pending order for a customer.",
        input_schema={
            "type": "object",
            "properties": {
                "customer_id": {"type": "string"},
                "total": {"type": "number", "minimum": 0},
            },
            "required": ["customer_id", "total"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"order": ORDER_SCHEMA}, "required": ["order"]},
    )
    def create_order(self, customer_id: str, total: float) -> dict[str, Any]:
        self.require("customers", customer_id, "Customer")
        key = self.next_id("orders", "ord_")
        row = {
            "id": key,
            "customer_id": customer_id,
            "total": total,
            "status": "pending",
            "created_at": self.state["now"],
        }
        return {"order": self.put("orders", key, row)}

    @tool(
        kind="write",
        description="Cancel an order that is still pending or paid.",
        input_schema={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"order": ORDER_SCHEMA}, "required": ["order"]},
    )
    def cancel_order(self, order_id: str) -> dict[str, Any]:
        row = self.require("orders", order_id, "Order")
        if row["status"] not in ("pending", "paid"):
            raise ToolError("invalid_state", f"Order {order_id!r} is {row['status']}, not pending or paid")
        return {"order": self.put("orders", order_id, {**row, "status": "cancelled"})}


ENVIRONMENT_CLASS = ShopOrders
