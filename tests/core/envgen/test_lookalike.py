"""Benchmark look-alike tags: file-system and retail toolsets are recognised, a plain shop is not."""

from __future__ import annotations

from test_codegen import shop_envs

from envfactory_dagster.envgen.lookalike import lookalike_tags


def renamed(names: list[str]):
    spec = shop_envs()[0]
    tools = [spec.tools[i % len(spec.tools)].model_copy(update={"name": n}) for i, n in enumerate(names)]
    return spec.model_copy(update={"tools": tools})


def test_file_system_and_retail_toolsets_are_tagged() -> None:
    files = renamed(
        ["list_directory", "create_directory", "move_file", "read_file", "copy_file", "delete_file"]
    )
    assert lookalike_tags(files) == ["bfcl:GorillaFileSystem"]
    retail = renamed(
        ["get_order_details", "cancel_pending_order", "get_user_details", "return_delivered_order_items"]
    )
    assert "tau2:retail" in lookalike_tags(retail)


def test_generic_crud_is_not_tagged() -> None:
    assert all(lookalike_tags(spec) == [] for spec in shop_envs())
    dining = renamed(
        [
            "list_dining_reservations",
            "create_dining_reservation",
            "cancel_dining_reservation",
            "get_dining_reservation",
        ]
    )
    assert lookalike_tags(dining) == []
