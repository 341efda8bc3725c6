"""Closing answers: the template writer reports what the outputs say, the check rejects what they
do not, and the LLM writer (a local OpenAI-compatible server with scripted answers) is kept only
when its answer passes the check."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from envfactory_dagster.export.turn_answers import (
    AnswerJob,
    Fact,
    answer_problems,
    field_phrase,
    reference,
    render_fact,
    short,
    template_answer,
    write_answers,
)
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.querygen.trajectory_model import Trajectory
from tests.fakes.refine_fixtures import SHOP, USER, execute_trajectory, out

KINDS = {(SHOP, "search_customers"): "read", (SHOP, "list_orders"): "read", (SHOP, "create_order"): "write"}
NAMES = {(SHOP, tool): f"ShopOrders__{tool}" for _, tool in KINDS}


def create_then_list(seed: int) -> Trajectory:
    return execute_trajectory(
        [
            (
                "Find Alan and add a 25 dollar order for him.",
                [
                    (SHOP, "search_customers", {"name": "Alan"}, {"name": USER}),
                    (
                        SHOP,
                        "create_order",
                        {"customer_id": "cus_0002", "total": 25.0},
                        {"customer_id": out(0, 0, "customers[0].id"), "total": USER},
                    ),
                ],
            ),
            ("What orders does Alan have now?", [(SHOP, "list_orders", {"customer_id": "cus_0002"}, {})]),
        ],
        chain_id=f"chain_{seed}",
        seed=seed,
    )


def test_template_answers_report_the_outputs_and_pass_the_check() -> None:
    trajectory = create_then_list(0)
    first, second = (template_answer(t, KINDS, seed_key=trajectory.id) for t in trajectory.turns)
    assert "ord_0005" in first  # the row the turn wrote
    assert "cus_0002" not in first or "Alan" in first  # the look-up is reported only as context
    assert "2 orders" in second or "two" in second.lower() or "ord_0003" in second
    for turn, answer in zip(trajectory.turns, (first, second), strict=True):
        assert answer_problems(answer, turn, NAMES.values()) == []


def test_answers_vary_with_the_seed_but_not_between_runs() -> None:
    turn = create_then_list(0).turns[0]
    answers = {template_answer(turn, KINDS, seed_key=f"trajectory {i}") for i in range(40)}
    assert len(answers) >= 6
    assert template_answer(turn, KINDS, seed_key="x") == template_answer(turn, KINDS, seed_key="x")


def test_the_check_rejects_invented_ids_tool_names_and_missing_writes() -> None:
    turn = create_then_list(0).turns[0]
    names = NAMES.values()
    assert answer_problems("", turn, names) == ["empty: no text"]
    assert answer_problems("Created ord_0005 via ShopOrders__create_order.", turn, names) == [
        "names a tool: ShopOrders__create_order"
    ]
    assert answer_problems("Created order ord_0042.", turn, names)[0].startswith("cites an identifier")
    assert answer_problems("I found Alan Turing.", turn, names)[0].startswith("omits a row the turn wrote")


class ScriptedOpenAI(BaseHTTPRequestHandler):
    """/v1/chat/completions: a good answer for the turn that creates an order, else one that cites
    an order no output holds."""

    requests: list[dict] = []  # noqa: RUF012 (shared by the handler instances of one server)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ScriptedOpenAI.requests.append(body)
        prompt = body["messages"][-1]["content"]
        answer = (
            "I placed order ord_0005 for Alan Turing."
            if "create_order" in prompt
            else "Order ord_0999 is ready."
        )
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps({"answer": answer})},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def openai_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ScriptedOpenAI.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_llm_answers_are_kept_only_when_they_pass_the_check(
    openai_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EF_TEST_KEY", "local")
    settings = LLMSettings(
        models={"refiner": "openai/scripted"},
        api_base=openai_server,
        api_key_env="EF_TEST_KEY",
        cache_dir=tmp_path,
    )
    trajectory = create_then_list(1)
    with LLMGateway(settings) as gateway:
        answers, metrics = write_answers(
            [AnswerJob(trajectory, NAMES, KINDS)], backend="llm", gateway=gateway
        )
    assert len(ScriptedOpenAI.requests) == 2  # one request per turn, over HTTP
    assert answers[0][0] == "I placed order ord_0005 for Alan Turing."
    # turn 1's answer cited ord_0999: rejected, the template answer stands
    assert answers[0][1] == template_answer(trajectory.turns[1], KINDS, seed_key=trajectory.id)
    assert metrics["llm_answers_accepted"] == 1
    assert metrics["llm_answers_rejected"] == {"cites an identifier the turn never showed": 1}


def test_enum_values_are_said_in_words_and_ids_stay_verbatim() -> None:
    assert reference({"id": "ord_0001", "status": "ready_to_ship"}) == "ord_0001 (ready to ship)"
    assert short("DESK_REJECT") == "desk reject" and short("PENDING") == "pending"
    assert short("ord_0001") == "ord_0001" and short("USD") == "USD"


def test_a_unit_suffix_is_said_after_its_number() -> None:
    fact = Fact(
        "shown", "route", ref="strava_rou_0007", fields=[("estimated moving time s", 203), ("name s", "x")]
    )
    answer = render_fact(fact, random.Random(0))
    assert "estimated moving time 203 s" in answer and "moving time s" not in answer
    assert "name s x" in answer  # not a number: the label is left as it is
    changed = Fact("changed", "route", ref="strava_rou_0007", changes=[("distance m", 3.5, 4)])
    assert "distance" in render_fact(changed, random.Random(0)) and "4 m" in render_fact(
        changed, random.Random(0)
    )
    assert field_phrase("completion pct", 40) == "completion 40%"
