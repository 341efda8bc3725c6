"""Matching rules of the tool graph on small hand-built specs: entity-suffix ids, arrays of ids,
state-scoped inputs of tools no chain could start from, key patterns; and how execution binds them."""

from __future__ import annotations

import random
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.querygen.binding import ArgumentBinder
from envfactory_dagster.querygen.execution import ChainExecutor
from envfactory_dagster.querygen.tool_chains import sample_chains, validate_chain
from envfactory_dagster.querygen.tool_graph import build_tool_graph, graph_metrics


def _entity(name: str, collection: str, prefix: str, *fields: FieldSpec) -> EntitySpec:
    return EntitySpec(
        name=name,
        collection=collection,
        id_prefix=prefix,
        fields=[FieldSpec(name="id", type="string"), FieldSpec(name="name", type="string"), *fields],
    )


def _list_output(collection: str) -> dict[str, Any]:
    item = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    return {"type": "object", "properties": {collection: {"type": "array", "items": item}}}


def _tool(
    name: str, action: str, entity: str, inputs: dict[str, Any], output: dict[str, Any], **kw: Any
) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=f"{name} tool",
        kind="write" if action == "create" else "read",
        action=action,  # type: ignore[arg-type]
        entity=entity,
        input_schema={"type": "object", "properties": inputs, "required": sorted(inputs)},
        output_schema=output,
        **kw,
    )


def _row(spec: EnvSpec, env_id: str = "env_hotels") -> dict[str, Any]:
    return {"env_id": env_id, "domain": spec.domain, "spec_json": spec.model_dump_json()}


def _hotel_spec(offer_pattern: str | None = None) -> EnvSpec:
    """Hotels by city -> offers for an array of hotel ids -> a booking of one offer (`offer_id`)."""
    offer_schema: dict[str, Any] = {"type": "string", **({"pattern": offer_pattern} if offer_pattern else {})}
    return EnvSpec(
        class_name="Hotels",
        title="Hotels",
        description="hotel shopping",
        domain="travel",
        entities=[
            _entity("Hotel", "hotels", "hot_", FieldSpec(name="city_code", type="string")),
            _entity(
                "HotelOffer",
                "hotel_offers",
                "ho_",
                FieldSpec(name="hotel_id", type="string", ref_entity="Hotel"),
            ),
            _entity("Booking", "bookings", "bk_", FieldSpec(name="offer_id", type="string")),
        ],
        tools=[
            _tool(
                "hotels_by_city",
                "list",
                "Hotel",
                {"city_code": {"type": "string"}},
                _list_output("hotels"),
                param_fields={"city_code": "city_code"},
            ),
            _tool(
                "offers_for_hotels",
                "list",
                "HotelOffer",
                {"hotel_ids": {"type": "array", "items": {"type": "string"}}},
                _list_output("hotel_offers"),
            ),
            _tool(
                "book_offer",
                "create",
                "Booking",
                {"offer_id": offer_schema},
                {
                    "type": "object",
                    "properties": {"booking": {"type": "object", "properties": {"id": {"type": "string"}}}},
                },
                param_fields={"offer_id": "offer_id"},
            ),
        ],
    )


def _feeds(graph, tool: str, param: str) -> list[tuple[str, str]]:
    input_id = f"env_hotels::{tool}::in::{param}"
    return [
        (o.split("::", 1)[1], graph.graph.edges[o, input_id]["provenance"])
        for o, _ in graph.input_feeds[input_id]
    ]


def test_suffix_id_matches_the_one_entity_ending_in_it() -> None:
    graph = build_tool_graph([_row(_hotel_spec())])
    assert _feeds(graph, "book_offer", "offer_id") == [
        ("offers_for_hotels::out::hotel_offers[].id", "entity_suffix")
    ]
    assert graph_metrics(graph)["feed_edges_by_provenance"]["entity_suffix"] == 1


def test_ambiguous_suffix_links_nothing() -> None:
    spec = _hotel_spec()
    flight = _entity("FlightOffer", "flight_offers", "fo_")
    tools = [
        *spec.tools,
        _tool("list_flight_offers", "list", "FlightOffer", {}, _list_output("flight_offers")),
    ]
    graph = build_tool_graph(
        [_row(spec.model_copy(update={"entities": [*spec.entities, flight], "tools": tools}))]
    )
    assert _feeds(graph, "book_offer", "offer_id") == []
    assert "env_hotels::book_offer::in::offer_id" in graph_metrics(graph)["unfillable_inputs"]


def test_a_pattern_that_refuses_seeded_keys_links_nothing() -> None:
    graph = build_tool_graph([_row(_hotel_spec(offer_pattern="^[A-Z0-9]*$"))])
    assert _feeds(graph, "book_offer", "offer_id") == []


def test_plural_id_array_is_fed_by_list_element_ids_and_binds_a_one_element_array() -> None:
    graph = build_tool_graph([_row(_hotel_spec())])
    input_id = "env_hotels::offers_for_hotels::in::hotel_ids"
    assert _feeds(graph, "offers_for_hotels", "hotel_ids") == [
        ("hotels_by_city::out::hotels[].id", "name_match")
    ]
    assert graph.graph.edges["env_hotels::hotels_by_city::out::hotels[].id", input_id]["element"] is True
    assert graph_metrics(graph)["unfillable_inputs"] == []
    chains = [c for c in sample_chains(graph, seed=3, n_chains=20) if c.valid]
    assert any(
        c.tools[:3] == [f"env_hotels::{t}" for t in ("hotels_by_city", "offers_for_hotels", "book_offer")]
        for c in chains
    )

    executor = ChainExecutor(
        {},
        graph,
        seed=1,
        state_pool_size=1,
        p_optional_output=0.5,
        p_optional_user=0.1,
        p_optional_control=0.1,
    )
    binder = ArgumentBinder(
        graph,
        random.Random(0),
        executor.faker,
        executor.validator,
        {"env_hotels": "env_hotels"},
        clock=executor.clock(graph.envs["env_hotels"].spec),
        p_optional_output=0.5,
        p_optional_user=0.1,
        p_optional_control=0.1,
    )
    binder.records.append(
        (0, 0, "env_hotels::hotels_by_city", {"hotels": [{"id": "hot_0002", "name": "Sea"}]})
    )
    spec = graph.envs["env_hotels"].spec
    tool = graph.tool_spec("env_hotels::offers_for_hotels")
    value, source = binder.from_outputs(
        input_id, tool, spec, None, tool.input_schema["properties"]["hotel_ids"]
    )
    assert value == ["hot_0002"]
    assert (source.kind, source.path) == ("output", "hotels[0].id")


def test_ids_only_cyclic_producers_supply_are_read_from_the_state() -> None:
    """Every tool needs a `plan_id` that only plan-scoped tools output: no chain could start."""
    plan_field = FieldSpec(name="plan_id", type="string", ref_entity="Plan")
    item = {"type": "object", "properties": {"id": {"type": "string"}, "plan_id": {"type": "string"}}}
    spec = EnvSpec(
        class_name="Budget",
        title="Budget",
        description="plans",
        domain="finance",
        entities=[
            _entity("Plan", "plans", "pla_"),
            _entity("Payee", "payees", "pay_", plan_field),
            _entity("Movement", "movements", "mm_", plan_field),
        ],
        tools=[
            _tool(
                f"list_{c}",
                "list",
                e,
                {"plan_id": {"type": "string"}},
                {"type": "object", "properties": {c: {"type": "array", "items": item}}},
                param_fields={"plan_id": "plan_id"},
            )
            for e, c in (("Payee", "payees"), ("Movement", "movements"))
        ],
    )
    graph = build_tool_graph([_row(spec, "env_budget")])
    scoped = graph_metrics(graph)["state_scoped_inputs"]
    assert scoped == ["env_budget::list_movements::in::plan_id", "env_budget::list_payees::in::plan_id"]
    assert all(graph.from_state(i) == "plans" and not graph.user_provided(i) for i in scoped)
    chains = sample_chains(graph, seed=5, n_chains=5)
    assert chains and all(c.valid and not validate_chain(c, graph) for c in chains)
