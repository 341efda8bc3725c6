"""Function-calling tool catalogs: OpenAI `tools` lists and plain function docs become normalized
specs, then verified environments whose tools have sensible read/write kinds and the documented
outputs."""

from __future__ import annotations

import json
from pathlib import Path

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.ingest.resource_file import parse_resource_file

OPENAI_TOOLS = {
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "search_hotels",
                "description": "Search hotels in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name"},
                        "max_price": {"type": "number"},
                    },
                    "required": ["city"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "book_hotel",
                "description": "Book a room in a hotel.",
                "parameters": {
                    "type": "object",
                    "properties": {"hotel_id": {"type": "string"}, "nights": {"type": "integer"}},
                    "required": ["hotel_id", "nights"],
                },
            },
        },
    ]
}

# the shape tool hubs and tool-use benchmarks publish: flat parameter maps with per-parameter
# `required`, non-JSON-Schema type names, outputs, a stated HTTP method and host
PLAIN_FUNCTIONS = [
    {
        "name": "Rentals.FindCars",
        "description": "Find rental cars available in a city",
        "arguments": {
            "pickup_city": {"description": "City to pick the car up", "required": True},
            "car_type": {"allowed_values": ["Compact", "SUV"], "required": False, "default_value": "SUV"},
        },
        "output_parameters": {
            "car_name": {"description": "Name of the car"},
            "pickup_location": {"description": "Where to pick the car up"},
            "daily_price": {"type": "float", "description": "Price per day"},
        },
    },
    {
        "name": "Rentals.ReserveCar",
        "description": "Reserve a rental car",
        "arguments": {
            "pickup_location": {"description": "Where to pick the car up", "required": True},
            "days": {"type": "int", "required": True},
        },
        "output_parameters": {"confirmation": {"description": "Confirmation code"}},
    },
    {
        "name": "WeatherForecast",
        "description": "Forecast of a place",
        "method": "get",
        "endpoint": "/forecast.json",
        "host": "api.weatherly.example",
        "query_parameters": {"q": {"type": "string", "required": True, "description": "Place"}},
        "output_parameters": {
            "location": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "region": {"type": "string"}},
            },
            "photo": {"type": "file"},
        },
    },
    {
        "name": "calculate_tip",
        "description": "Tip for a bill",
        "parameters": {
            "bill_total": {"type": "number", "required": True, "description": "The total of the bill"}
        },
        "output_parameters": {"tip_amount": {"type": "number", "description": "The tip"}},
    },
]


def test_openai_tools_and_plain_function_docs_become_normalized_specs(tmp_path: Path) -> None:
    (tmp_path / "openai.json").write_text(json.dumps(OPENAI_TOOLS))
    (tmp_path / "plain.json").write_text(json.dumps(PLAIN_FUNCTIONS + PLAIN_FUNCTIONS[:1]))  # a repeat
    openai = parse_resource_file(tmp_path / "openai.json")
    assert openai.kind == "functions" and [o.operation_id for o in openai.operations] == [
        "search_hotels",
        "book_hotel",
    ]
    book = openai.operations[1]
    assert [(p.name, p.location, p.required) for p in book.parameters] == [
        ("hotel_id", "argument", True),
        ("nights", "argument", True),
    ]
    assert book.method is None and book.response is None

    plain = parse_resource_file(tmp_path / "plain.json")
    ops = {o.operation_id: o for o in plain.operations}
    assert list(ops) == ["Rentals.FindCars", "Rentals.ReserveCar", "WeatherForecast", "calculate_tip"]
    find = ops["Rentals.FindCars"]
    assert find.tags == ["Rentals"]  # the service a dotted name states
    car_type = next(p for p in find.parameters if p.name == "car_type")
    assert not car_type.required and car_type.schema_["enum"] == ["Compact", "SUV"]
    assert car_type.schema_["default"] == "SUV" and "required" not in car_type.schema_
    assert find.response["properties"]["daily_price"]["type"] == "number"  # `float`
    weather = ops["WeatherForecast"]
    assert weather.tags == ["weatherly"]  # the host's service
    assert weather.extensions["x-http-method"] == "GET" and weather.parameters[0].location == "query"
    assert weather.response["properties"]["location"]["properties"]["name"] == {"type": "string"}
    assert weather.response["properties"]["photo"] == {"type": "string", "format": "binary"}


def test_an_mcp_listing_stays_an_mcp_listing(tmp_path: Path) -> None:
    listing = {"tools": [{"name": "read_file", "inputSchema": {"type": "object", "properties": {}}}]}
    (tmp_path / "server.json").write_text(json.dumps(listing))
    assert parse_resource_file(tmp_path / "server.json").kind == "mcp"


def test_catalog_functions_become_verified_tools_with_sensible_kinds_and_outputs(tmp_path: Path) -> None:
    domain = tmp_path / "travel"
    domain.mkdir()
    (domain / "functions.json").write_text(json.dumps(PLAIN_FUNCTIONS))
    registry = registry_for_domain(tmp_path, "travel")
    tools = {
        t.source_operation_id.partition(":")[2]: t
        for row in registry
        for t in EnvSpec.model_validate_json(row["spec_json"]).tools
    }
    assert set(tools) == {"Rentals.FindCars", "Rentals.ReserveCar", "WeatherForecast", "calculate_tip"}
    kinds = {name: (t.kind, t.action) for name, t in tools.items()}
    assert kinds["Rentals.FindCars"] == ("read", "search")  # the verb after the service prefix
    assert kinds["Rentals.ReserveCar"][0] == "write"  # reserving changes the world
    assert kinds["WeatherForecast"][0] == "read"  # a stated GET
    assert kinds["calculate_tip"][0] == "read"  # no write word, documented outputs: a computation

    def output_fields(name: str) -> set[str]:
        (prop,) = tools[name].output_schema["properties"].values()
        return set((prop.get("items") or prop)["properties"])

    assert {"car_name", "pickup_location", "daily_price"} <= output_fields("Rentals.FindCars")
    assert "tip_amount" in output_fields("calculate_tip")
