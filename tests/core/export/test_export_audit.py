"""The consumers' rules the audits encode reject what those consumers reject.

LLaMA-Factory rules: hiyouga/LLaMA-Factory@ff6d4d12, src/llamafactory/data/converter.py
(`SharegptDatasetConverter.__call__`: odd/even role tags, even count) and data/formatter.py
(`FunctionFormatter.apply`: a function_call value is JSON of one call or a list of calls).
LLaMA-Factory itself does not import without torch/transformers/peft (its extras.constants imports
them), so its rules are encoded here.
"""

from __future__ import annotations

import json

from envfactory_dagster.export.export_audit import (
    most_shared_answer,
    openai_problems,
    sharegpt_problems,
    unseen_ids,
)

CALL = json.dumps([{"name": "get_order", "arguments": {"order_id": "ord_0001"}}])


def sharegpt(*entries: tuple[str, str]) -> dict:
    return {"conversations": [{"from": f, "value": v} for f, v in entries], "system": "s", "tools": "[]"}


def test_sharegpt_alternation_and_count() -> None:
    valid = sharegpt(("human", "q"), ("function_call", CALL), ("observation", "{}"), ("gpt", "a"))
    assert sharegpt_problems(valid) == []
    with_system = {**valid, "conversations": [{"from": "system", "value": "s"}, *valid["conversations"]]}
    assert sharegpt_problems(with_system) == []
    two_observations = sharegpt(
        ("human", "q"), ("function_call", CALL), ("observation", "{}"), ("observation", "{}"), ("gpt", "a")
    )
    assert "role 'observation'" in sharegpt_problems(two_observations)[0]
    odd = sharegpt(("human", "q"), ("function_call", CALL), ("observation", "{}"))
    assert sharegpt_problems(odd) == ["odd number of entries (3) after the system entry"]
    bad_call = sharegpt(
        ("human", "q"), ("function_call", "get_order(ord_0001)"), ("observation", "{}"), ("gpt", "a")
    )
    assert sharegpt_problems(bad_call) == ["entry 1: function_call value is not JSON"]


def test_openai_line_rules() -> None:
    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {}}}]
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_order", "arguments": '{"order_id": "ord_1"}'},
    }
    good = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"},
            {"role": "assistant", "content": "done"},
        ],
        "tools": tools,
    }
    assert openai_problems(good) == []
    unanswered = {**good, "messages": good["messages"][:2]}
    assert openai_problems(unanswered) == ["tool calls without a result: ['c1']"]
    wrong_id = json.loads(json.dumps(good))
    wrong_id["messages"][2]["tool_call_id"] = "c2"
    assert any("answers no earlier call" in p for p in openai_problems(wrong_id))
    dict_arguments = json.loads(json.dumps(good))
    dict_arguments["messages"][1]["tool_calls"][0]["function"]["arguments"] = {"order_id": "ord_1"}
    assert openai_problems(dict_arguments) == ["message 1: arguments must be JSON text of an object"]
    unknown_tool = json.loads(json.dumps(good))
    unknown_tool["tools"][0]["function"]["name"] = "list_orders"
    assert openai_problems(unknown_tool) == ["message 1: tool 'get_order' is not in tools"]


def test_unseen_ids_catch_a_guessed_id_and_accept_a_shown_one() -> None:
    def messages(shown: str) -> list[dict]:
        return [
            {"role": "user", "content": f"cancel the order {shown}"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "cancel", "arguments": '{"order_id": "ord_0007"}'},
                    }
                ],
            },
        ]

    assert unseen_ids(messages("ord_0007")) == []
    assert unseen_ids(messages("of Ada")) == [
        {"message": 1, "tool": "cancel", "argument": "order_id", "value": "ord_0007"}
    ]


def test_most_shared_answer_counts_turn_closings() -> None:
    turn = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Done."}]
    share, text, total = most_shared_answer([turn, turn, [*turn[:1], {"role": "assistant", "content": "x"}]])
    assert (round(share, 2), text, total) == (0.67, "Done.", 3)


def test_a_value_the_tool_schema_enumerates_is_an_option_not_an_id() -> None:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "set_terms", "arguments": '{"terms": "net_60"}'},
    }
    messages = [
        {"role": "user", "content": "pay in sixty days"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "set_terms",
                "parameters": {"type": "object", "properties": {"terms": {"enum": ["net_30", "net_60"]}}},
            },
        }
    ]
    assert [u["value"] for u in unseen_ids(messages)] == ["net_60"]  # without the schema it looks like one
    assert unseen_ids(messages, tools) == []
