"""Matchers that read the API, on small hand-built specs: each edge they add keeps its evidence."""

from __future__ import annotations

import random
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.ingest.normalized_spec import (
    NormalizedLink,
    NormalizedOperation,
    NormalizedParam,
    NormalizedSpec,
)
from envfactory_dagster.querygen.binding import ArgumentBinder
from envfactory_dagster.querygen.execution import ChainExecutor
from envfactory_dagster.querygen.tool_graph import build_tool_graph

RESOURCE = "res_flights"


def _entity(name: str, collection: str, *fields: str) -> EntitySpec:
    return EntitySpec(
        name=name,
        collection=collection,
        id_prefix=f"{collection[:3]}_",
        fields=[FieldSpec(name="id", type="string"), *(FieldSpec(name=f, type="string") for f in fields)],
    )


def _tool(
    name: str,
    entity: str,
    inputs: dict[str, dict[str, Any]],
    outputs: list[str],
    collection: str,
    kind: str = "read",
    **kw: Any,
) -> ToolSpec:
    item = {"type": "object", "properties": {o: {"type": "string"} for o in outputs}}
    return ToolSpec(
        name=name,
        description=f"{name} tool",
        kind=kind,  # type: ignore[arg-type]
        action="search" if kind == "read" else "custom",
        entity=entity,
        input_schema={"type": "object", "properties": inputs, "required": sorted(inputs)},
        output_schema={"type": "object", "properties": {collection: {"type": "array", "items": item}}},
        source_operation_id=f"{RESOURCE}:{name}",
        **kw,
    )


def _row(env_id: str, tools: list[ToolSpec], entities: list[EntitySpec], resource: str = RESOURCE) -> dict:
    spec = EnvSpec(
        class_name=env_id.title().replace("_", ""),
        title=env_id,
        description="test",
        domain="travel",
        entities=entities,
        tools=tools,
        resource_ids=[resource],
        world_id=resource,  # one world per service (document)
    )
    return {"env_id": env_id, "domain": "travel", "spec_json": spec.model_dump_json()}


def _flights() -> dict:
    airport = _entity("Airport", "airports", "skyId", "entityName")
    flight = _entity("Flight", "flights", "flightId")
    return _row(
        "env_flights",
        [
            _tool(
                "search_airport",
                "Airport",
                {"query": {"type": "string"}},
                ["id", "skyId", "entityName"],
                "airports",
            ),
            _tool(
                "search_flights",
                "Flight",
                {
                    "origin_sky_id": {
                        "type": "string",
                        "description": "The originSkyId code can be extracted from the Search Airport API.",
                    },
                    "leg": {"type": "string", "description": "Which leg: outbound or return."},
                },
                ["id", "flightId"],
                "flights",
            ),
        ],
        [airport, flight],
    )


def _evidence(graph, output: str, input_: str) -> tuple[str, tuple[str, ...]]:
    edge = graph.graph.edges[output, input_]
    return edge["provenance"], edge["evidence"]


def test_a_description_naming_the_source_tool_links_its_best_fitting_output() -> None:
    graph = build_tool_graph([_flights()])
    output = "env_flights::search_airport::out::airports[].skyId"
    input_ = "env_flights::search_flights::in::origin_sky_id"
    provenance, evidence = _evidence(graph, output, input_)
    assert provenance == "described_source"
    assert any("names 'search_airport'" in e for e in evidence)
    assert any(e.startswith("qualified_name") for e in evidence)  # `origin_sky_id` is `sky_id` + a role
    # the description names the tool, not every output of it: the entity name does not fit
    assert not graph.graph.has_edge("env_flights::search_airport::out::airports[].entityName", input_)
    assert "env_flights::search_flights" in graph.tool_successors["env_flights::search_airport"]


def test_an_or_name_takes_each_of_its_alternatives() -> None:
    users = _entity("User", "users", "username")
    posts = _entity("Post", "posts", "caption")
    row = _row(
        "env_social",
        [
            _tool("search_users", "User", {"query": {"type": "string"}}, ["id", "username"], "users"),
            _tool(
                "list_posts",
                "Post",
                {"username_or_id_or_url": {"type": "string"}},
                ["id", "caption"],
                "posts",
            ),
        ],
        [users, posts],
    )
    graph = build_tool_graph([row])
    provenance, evidence = _evidence(
        graph,
        "env_social::search_users::out::users[].username",
        "env_social::list_posts::in::username_or_id_or_url",
    )
    assert provenance == "qualified_name" and "takes a 'username'" in evidence[0]


def test_the_documents_own_links_are_edges() -> None:
    spec = NormalizedSpec(
        kind="openapi3",
        title="Flights",
        operations=[
            NormalizedOperation(
                operation_id="search_airport",
                links=[
                    NormalizedLink(
                        operation_id="search_flights", parameters={"leg": "$response.body#/entityName"}
                    )
                ],
            ),
            NormalizedOperation(
                operation_id="search_flights",
                parameters=[NormalizedParam(name="leg", location="query", schema={"type": "string"})],
            ),
        ],
    )
    resources = [{"id": RESOURCE, "spec_json": spec.model_dump_json(by_alias=True)}]
    output = "env_flights::search_airport::out::airports[].entityName"
    input_ = "env_flights::search_flights::in::leg"
    assert not build_tool_graph([_flights()]).graph.has_edge(output, input_)
    provenance, evidence = _evidence(build_tool_graph([_flights()], resources=resources), output, input_)
    assert provenance == "link" and "leg = $response.body#/entityName" in evidence[0]


def test_value_roles_stay_within_a_service_and_echoes_of_writes_feed_nothing() -> None:
    jokes = _entity("Joke", "jokes", "joke")
    sms = _entity("SendSmsRequest", "send_sms_requests", "message")
    sms_tools = [
        _tool("random_joke", "Joke", {}, ["id", "joke"], "jokes"),
        _tool(
            "send_sms",
            "SendSmsRequest",
            {"message": {"type": "string"}},
            ["id", "message"],
            "requests",
            kind="write",
        ),
        _tool(
            "send_email",
            "SendSmsRequest",
            {"body": {"type": "string"}},
            ["id", "body"],
            "requests",
            kind="write",
        ),
    ]
    elsewhere = _row(
        "env_other",
        [_tool("random_quote", "Joke", {}, ["id", "joke"], "jokes")],
        [jokes],
        resource="res_other",
    )
    graph = build_tool_graph([_row("env_sms", sms_tools, [jokes, sms]), elsewhere])
    message = "env_sms::send_sms::in::message"
    provenance, evidence = _evidence(graph, "env_sms::random_joke::out::jokes[].joke", message)
    assert provenance == "value_role" and "takes any text" in evidence[0]
    assert not graph.graph.has_edge("env_other::random_quote::out::jokes[].joke", message)  # another service
    # the SMS a write recorded echoes what it was given: it feeds no other text sink
    assert not graph.graph.has_edge(
        "env_sms::send_sms::out::requests[].message", "env_sms::send_email::in::body"
    )


def test_a_weak_edge_back_against_a_strong_one_is_dropped() -> None:
    airport = _entity("Airport", "airports", "skyId", "name")
    flight = _entity("Flight", "flights", "destination_name")
    row = _row(
        "env_flights",
        [
            _tool(
                "search_airport",
                "Airport",
                {"query": {"type": "string"}},
                ["id", "skyId", "name"],
                "airports",
            ),
            _tool(
                "search_flights",
                "Flight",
                {"origin_sky_id": {"type": "string"}},
                ["id", "destination_name"],
                "flights",
            ),
        ],
        [airport, flight],
    )
    graph = build_tool_graph([row])
    assert "env_flights::search_flights" in graph.tool_successors["env_flights::search_airport"]
    # a flight's destination name could be searched as an airport name (`query` takes any name of
    # its own service), but the airport search comes first: that edge would only loop back
    assert "env_flights::search_airport" not in graph.tool_successors["env_flights::search_flights"]


def test_a_key_of_its_own_entity_is_not_read_as_a_qualified_name() -> None:
    """`cancelled_message_id` keys a CancelledMessage: a message's id is not one."""
    messages = _entity("Message", "messages", "text")
    cancelled = _entity("CancelledMessage", "cancelled_messages", "reason")
    row = _row(
        "env_sms",
        [
            _tool("list_messages", "Message", {}, ["id", "text"], "messages"),
            _tool(
                "uncancel",
                "CancelledMessage",
                {"cancelled_message_id": {"type": "string"}},
                ["id", "reason"],
                "cancelled_messages",
                param_fields={"cancelled_message_id": "id"},
            ),
        ],
        [messages, cancelled],
    )
    graph = build_tool_graph([row])
    assert graph.input_feeds["env_sms::uncancel::in::cancelled_message_id"] == []
    assert graph.from_state("env_sms::uncancel::in::cancelled_message_id") == "cancelled_messages"


def test_an_input_taking_any_value_as_data_is_fed_a_number_written_as_text() -> None:
    bmi = _entity("Bmi", "bmis", "bmi")
    barcode = _entity("Barcode", "barcodes", "barcode")
    calculate = _tool("calculate_bmi", "Bmi", {"weight": {"type": "number"}}, ["id"], "bmis")
    calculate.output_schema["properties"]["bmis"]["items"]["properties"]["bmi"] = {"type": "number"}
    tools = [
        calculate,
        _tool("generate_barcode", "Barcode", {"data": {"type": "string"}}, ["id", "barcode"], "barcodes"),
        _tool("send_sms", "Barcode", {"message": {"type": "string"}}, ["id"], "barcodes", kind="write"),
        _tool("translate_text", "Barcode", {"text": {"type": "string"}}, ["id"], "barcodes"),
    ]
    graph = build_tool_graph([_row("env_codes", tools, [bmi, barcode])])
    output, data = "env_codes::calculate_bmi::out::bmis[].bmi", "env_codes::generate_barcode::in::data"
    provenance, evidence = _evidence(graph, output, data)
    assert provenance == "value_role" and "any value as data" in evidence[0]
    # a message is sent as given: it takes the one number a tool computed, written as text; a text
    # to translate is read as language: a bare number is none
    _, evidence = _evidence(graph, output, "env_codes::send_sms::in::message")
    assert "written as text" in evidence[0]
    assert not graph.graph.has_edge(output, "env_codes::translate_text::in::text")

    executor = ChainExecutor(
        {},
        graph,
        seed=1,
        state_pool_size=1,
        p_optional_output=1.0,
        p_optional_user=0.0,
        p_optional_control=0.0,
    )
    binder = ArgumentBinder(
        graph,
        random.Random(0),
        executor.faker,
        executor.validator,
        {"env_codes": "env_codes"},
        clock=executor.clock(graph.envs["env_codes"].spec),
        p_optional_output=1.0,
        p_optional_user=0.0,
        p_optional_control=0.0,
    )
    binder.records.append((0, 0, "env_codes::calculate_bmi", {"bmis": [{"id": "bmi_0001", "bmi": 22.5}]}))
    tool = graph.tool_spec("env_codes::generate_barcode")
    spec = graph.envs["env_codes"].spec
    value, source = binder.from_outputs(data, tool, spec, None, tool.input_schema["properties"]["data"])
    assert value == "22.5" and source.path == "bmis[0].bmi"


def test_a_place_input_asking_for_a_code_takes_a_country_short_name_not_a_dial_code() -> None:
    country = _entity("Country", "countries", "short_name", "dial_code")
    holiday = _entity("Holiday", "holidays", "name")
    countries = _tool("list_countries", "Country", {}, ["id", "short_name", "dial_code"], "countries")
    item = countries.output_schema["properties"]["countries"]["items"]["properties"]
    item["short_name"]["description"] = "Short-name of the country"
    item["dial_code"]["description"] = "Dial code of the country"
    holidays = _tool(
        "list_holidays",
        "Holiday",
        {"location": {"type": "string", "description": "ISO 3166-2 location code, e.g. 'US', 'GB'"}},
        ["id", "name"],
        "holidays",
    )
    graph = build_tool_graph([_row("env_places", [countries, holidays], [country, holiday])])
    location = "env_places::list_holidays::in::location"
    provenance, evidence = _evidence(
        graph, "env_places::list_countries::out::countries[].short_name", location
    )
    assert provenance == "value_role" and "the code of a place" in evidence[0]
    assert not graph.graph.has_edge("env_places::list_countries::out::countries[].dial_code", location)


def test_a_one_word_quantity_one_lookup_computes_feeds_another_that_takes_it() -> None:
    route = _entity("Route", "routes", "distance")
    pace = _entity("Pace", "paces", "pace")
    calculate_route = _tool("calculate_route", "Route", {"origin": {"type": "string"}}, ["id"], "routes")
    calculate_route.output_schema["properties"]["routes"]["items"]["properties"]["distance"] = {
        "type": "number"
    }
    calculate_pace = _tool(
        "calculate_pace", "Pace", {"distance": {"type": "number"}}, ["id", "pace"], "paces"
    )
    graph = build_tool_graph([_row("env_runs", [calculate_route, calculate_pace], [route, pace])])
    _, evidence = _evidence(
        graph, "env_runs::calculate_route::out::routes[].distance", "env_runs::calculate_pace::in::distance"
    )
    assert any("same field name 'distance'" in e for e in evidence)
