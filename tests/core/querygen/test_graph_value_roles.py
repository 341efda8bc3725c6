"""Value roles beyond equal names: amounts a qualifier places in a computation, integer operands,
lists written out as text, quantities whose name qualifies the input's (each edge says why)."""

from __future__ import annotations

import random
from typing import Any

from envfactory_dagster.querygen.binding import ArgumentBinder
from envfactory_dagster.querygen.execution import ChainExecutor
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from tests.core.querygen.test_graph_evidence import _entity, _evidence, _row, _tool


def _with_output(tool: Any, collection: str, name: str, schema: dict[str, Any]) -> Any:
    tool.output_schema["properties"][collection]["items"]["properties"][name] = schema
    return tool


def test_a_qualified_amount_of_a_computation_takes_any_amount_a_rows_own_field_does_not() -> None:
    conversion = _entity("Conversion", "conversions", "note")
    order = _entity("Order", "orders", "tax_amount")
    convert = _with_output(
        _tool("convert_currency", "Conversion", {"amount": {"type": "number"}}, ["id"], "conversions"),
        "conversions",
        "converted_amount",
        {"type": "number"},
    )
    interest = _tool(
        "calculate_interest",
        "Conversion",
        {"principal_amount": {"type": "number"}, "rate": {"type": "number"}},
        ["id"],
        "conversions",
    )
    gcd = _tool("calculate_gcd", "Conversion", {"num1": {"type": "integer"}}, ["id"], "conversions")
    create_order = _tool(
        "create_order",
        "Order",
        {"tax_amount": {"type": "number"}},
        ["id"],
        "orders",
        kind="write",
        param_fields={"tax_amount": "tax_amount"},
    )
    graph = build_tool_graph([_row("env_money", [convert, interest, gcd, create_order], [conversion, order])])
    converted = "env_money::convert_currency::out::conversions[].converted_amount"
    provenance, evidence = _evidence(graph, converted, "env_money::calculate_interest::in::principal_amount")
    assert provenance == "value_role" and "any amount of money" in evidence[0]
    # a rate is no amount; an order's tax amount is that row's own field
    assert not graph.graph.has_edge(converted, "env_money::calculate_interest::in::rate")
    assert not graph.graph.has_edge(converted, "env_money::create_order::in::tax_amount")
    # an integer operand takes a number, and its evidence says when that is valid
    _, evidence = _evidence(graph, converted, "env_money::calculate_gcd::in::num1")
    assert "integer operand" in evidence[0] and "whole" in evidence[0]


def test_a_tools_one_list_is_written_out_as_text_and_fills_a_list_of_items() -> None:
    news = _entity("News", "news", "topic")
    movie = _entity("Movie", "movies", "title")
    text = _entity("Translation", "translations", "translated_text")
    get_news = _with_output(
        _tool("get_news", "News", {"topic": {"type": "string"}}, ["id"], "news"),
        "news",
        "headlines",
        {"type": "array", "description": "The news headlines"},
    )
    # a movie's genres are one attribute among its texts, not what the lookup produced
    get_movie = _with_output(
        _tool("get_movie", "Movie", {"query": {"type": "string"}}, ["id", "title"], "movies"),
        "movies",
        "genres",
        {"type": "array", "items": {"type": "string"}},
    )
    translate = _tool("translate_text", "Translation", {"text": {"type": "string"}}, ["id"], "translations")
    todo = _tool(
        "create_todo",
        "Translation",
        {"items": {"type": "array", "items": {"type": "string"}}},
        ["id"],
        "translations",
        kind="write",
    )
    graph = build_tool_graph([_row("env_lists", [get_news, get_movie, translate, todo], [news, movie, text])])
    headlines = "env_lists::get_news::out::news[].headlines"
    provenance, evidence = _evidence(graph, headlines, "env_lists::translate_text::in::text")
    assert provenance == "value_role" and "written as text" in evidence[0]
    _, evidence = _evidence(graph, headlines, "env_lists::create_todo::in::items")
    assert "any list of values" in evidence[0]
    assert not graph.graph.has_edge(
        "env_lists::get_movie::out::movies[].genres", "env_lists::translate_text::in::text"
    )

    executor = ChainExecutor(
        {},
        graph,
        seed=1,
        state_pool_size=1,
        p_optional_output=1.0,
        p_optional_user=0.0,
        p_optional_control=0.0,
    )
    spec = graph.envs["env_lists"].spec
    binder = ArgumentBinder(
        graph,
        random.Random(0),
        executor.faker,
        executor.validator,
        {"env_lists": "env_lists"},
        clock=executor.clock(spec),
        p_optional_output=1.0,
        p_optional_user=0.0,
        p_optional_control=0.0,
    )
    binder.records.append(
        (0, 0, "env_lists::get_news", {"news": [{"id": "new_0001", "headlines": ["A", "B"]}]})
    )
    tool = graph.tool_spec("env_lists::translate_text")
    value, source = binder.from_outputs(
        "env_lists::translate_text::in::text", tool, spec, None, tool.input_schema["properties"]["text"]
    )
    assert value == "A, B" and source.path == "news[0].headlines"


def test_a_quantity_whose_name_qualifies_the_inputs_feeds_it_a_cursor_takes_none() -> None:
    conversion = _entity("Distance", "distances", "unit")
    pace = _entity("Pace", "paces", "pace")
    convert = _with_output(
        _tool("convert_distance", "Distance", {"unit": {"type": "string"}}, ["id"], "distances"),
        "distances",
        "converted_distance",
        {"type": "number"},
    )
    _with_output(convert, "distances", "tz_offset", {"type": "integer"})
    calculate_pace = _tool(
        "calculate_pace",
        "Pace",
        {"distance": {"type": "number"}, "offset": {"type": "integer"}},
        ["id", "pace"],
        "paces",
    )
    graph = build_tool_graph([_row("env_runs", [convert, calculate_pace], [conversion, pace])])
    _, evidence = _evidence(
        graph,
        "env_runs::convert_distance::out::distances[].converted_distance",
        "env_runs::calculate_pace::in::distance",
    )
    assert any("'converted_distance' is a 'distance'" in e for e in evidence)
    assert not graph.graph.has_edge(
        "env_runs::convert_distance::out::distances[].tz_offset", "env_runs::calculate_pace::in::offset"
    )
