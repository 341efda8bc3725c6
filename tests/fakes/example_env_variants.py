"""Broken variants of tests/fakes/example_env.py, one known bug each (fixtures for verification tests)."""

from __future__ import annotations

from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE

BUGS = {
    # get_order indexes the table: an unknown id raises KeyError instead of ToolError
    "get_keyerror": (
        'return {"order": dict(self.require("orders", order_id, "Order"))}',
        'return {"order": dict(self.table("orders")[order_id])}',
    ),
    # cancel_order indexes the table: an unknown id raises KeyError
    "cancel_keyerror": (
        'row = self.require("orders", order_id, "Order")\n        if row["status"]',
        'row = self.table("orders")[order_id]\n        if row["status"]',
    ),
    # create_order skips the customer check: an unknown customer_id is accepted
    "create_no_fk_check": (
        'self.require("customers", customer_id, "Customer")\n        key = self.next_id',
        "key = self.next_id",
    ),
    # cancel_order mutates the shared row in place (breaks copy-on-write and replay)
    "cancel_in_place": (
        'return {"order": self.put("orders", order_id, {**row, "status": "cancelled"})}',
        'row["status"] = "cancelled"\n        return {"order": self.put("orders", order_id, row)}',
    ),
    # search_customers returns a bare list under the wrong key (output schema violation)
    "search_bad_output": (
        'return {"customers": rows}',
        'return {"customer_list": rows}',
    ),
    # get_order declares itself a write tool (schema/kind mismatch with the spec)
    "get_wrong_kind": (
        'kind="read",\n        description="Get one order by its id."',
        'kind="write",\n        description="Get one order by its id."',
    ),
    # cancel_order writes the row back unchanged (a write that changes nothing)
    "cancel_changes_nothing": (
        'return {"order": self.put("orders", order_id, {**row, "status": "cancelled"})}',
        'return {"order": self.put("orders", order_id, {**row})}',
    ),
    # cancel_order refuses every call, whatever the order's status
    "cancel_refuses_all": (
        'if row["status"] not in ("pending", "paid"):',
        'if row["status"]:',
    ),
}


def example_source_with(*bugs: str) -> str:
    """The example module with the named bugs applied."""
    source = EXAMPLE_ENV_SOURCE
    for bug in bugs:
        old, new = BUGS[bug]
        assert old in source, f"bug {bug!r} no longer applies to example_env.py"
        source = source.replace(old, new)
    return source
