"""An object argument that declares no property: never sampled when optional, never written."""

from __future__ import annotations

import random

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.querygen.binding import declares_nothing
from envfactory_dagster.querygen.query_templates import call_phrase, missing_user_values
from envfactory_dagster.querygen.surface import is_literal_in
from envfactory_dagster.querygen.trajectory_model import ArgumentSource, GoldCall


def test_an_object_of_no_declared_property_declares_nothing() -> None:
    assert declares_nothing({"type": "object"})
    assert declares_nothing({"type": "object", "properties": {}, "additionalProperties": True})
    assert not declares_nothing({"type": "object", "properties": {"memo": {"type": "string"}}})
    assert not declares_nothing({"type": "object", "additionalProperties": {"type": "string"}})
    assert not declares_nothing({"type": "string"})


def _create_transaction() -> tuple[ToolSpec, EnvSpec]:
    entity = EntitySpec(
        name="Transaction",
        collection="transactions",
        fields=[
            FieldSpec(name="id", type="string"),
            FieldSpec(name="memo", type="string"),
            FieldSpec(name="transaction", type="object"),
        ],
    )
    tool = ToolSpec(
        name="create_transaction",
        description="Create a transaction.",
        kind="write",
        action="create",
        entity="Transaction",
        input_schema={
            "type": "object",
            "properties": {"memo": {"type": "string"}, "transaction": {"type": "object"}},
            "required": ["memo", "transaction"],
        },
        output_schema={},
        param_fields={"memo": "memo", "transaction": "transaction"},
    )
    spec = EnvSpec(
        class_name="Budget", title="Budget", description="", domain="finance", entities=[entity], tools=[tool]
    )
    return tool, spec


def test_a_query_never_writes_an_empty_object_and_needs_not_to() -> None:
    tool, spec = _create_transaction()
    user = ArgumentSource(kind="user")
    call = GoldCall(
        env_id="env",
        tool=tool.name,
        arguments={"memo": "Rent for March", "transaction": {}},
        output={},
        argument_sources={"memo": user, "transaction": user},
    )
    phrase = call_phrase(call, tool, spec, random.Random(0), turn=0, vendor=None)
    assert "Rent for March" in phrase and "{}" not in phrase and "transaction {" not in phrase
    assert missing_user_values(phrase, [call], [tool]) == []
    assert is_literal_in({}, "anything") and not is_literal_in({"a": 1}, "anything")
