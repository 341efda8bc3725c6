"""User-only tools: the mark and the secret-input heuristic decide who runs a tool; in conversational
exports the assistant asks the user to do the step, the simulator runs the recorded call, and the
conversation still reaches the recorded states without the assistant ever seeing a secret."""

from __future__ import annotations

import json

import pytest

from envfactory_dagster.envgen.env_spec import PerformedBy, ToolSpec
from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.envgen.user_only import (
    declared_performer,
    mark_user_only_tools,
    secret_inputs,
    tool_performer,
)
from envfactory_dagster.export.rl_tasks import build_rl_tasks, replay_rl_task, rl_task_from_row
from envfactory_dagster.export.sft import build_sft_rows
from envfactory_dagster.export.user_actions import WITHHELD
from envfactory_dagster.ingest.function_catalog import parse_function_catalog
from envfactory_dagster.ingest.mcp_listing import parse_mcp_listing
from envfactory_dagster.ingest.openapi_document import parse_openapi_document
from envfactory_dagster.querygen.replay import recorded_replay, trajectory_of_row
from envfactory_dagster.querygen.tool_chains import sample_chains
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from envfactory_dagster.querygen.trajectories import execute_chains, load_envs
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from envfactory_dagster.runtime.toolset import Toolset
from envfactory_dagster.serve.gym_env import ToolUseEnv
from tests.conftest import BUNDLED_CATALOG


def _tool(properties: dict, required: list[str]) -> ToolSpec:
    schema = {"type": "object", "properties": properties, "required": required}
    return ToolSpec(
        name="t", description="", kind="write", action="custom", input_schema=schema, output_schema={}
    )


def test_the_heuristic_moves_a_tool_whose_required_input_is_the_users_secret() -> None:
    text = {"type": "string"}
    assert set(secret_inputs(_tool({"otp": text, "passcode": text}, ["otp", "passcode"]).input_schema)) == {
        "otp",
        "passcode",
    }
    described = {"type": "string", "description": "The one-time code sent to the holder by SMS."}
    assert "code" in secret_inputs(_tool({"code": described}, ["code"]).input_schema)
    assert "card_pin" in secret_inputs(_tool({"card_pin": {"type": "integer"}}, ["card_pin"]).input_schema)
    # not secrets: optional, a flag about a password, a pin *state*, a booking's confirmation code
    for properties, required in (
        ({"password": text}, []),
        (
            {"password_required": {"type": "boolean", "description": "Whether a password is needed."}},
            ["password_required"],
        ),
        ({"pin_state": text}, ["pin_state"]),
        ({"confirmation_code": text}, ["confirmation_code"]),
    ):
        assert secret_inputs(_tool(properties, required).input_schema) == {}, properties
    performer = tool_performer(_tool({"otp": text}, ["otp"]), None)
    assert performer is not None and performer.rule == "secret_input_heuristic"
    assert performer.secret_inputs == ["otp"] and "otp" in performer.evidence


def test_every_ingest_kind_carries_the_mark() -> None:
    openapi = parse_openapi_document(
        {
            "openapi": "3.0.3",
            "info": {"title": "Rail", "version": "1"},
            "paths": {
                "/tickets/{ticket_id}/activate": {
                    "post": {
                        "operationId": "activateTicket",
                        "x-performed-by": "user",
                        "parameters": [{"name": "ticket_id", "in": "path", "required": True}],
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
        },
        "openapi3",
        "rail",
    )
    mcp = parse_mcp_listing(
        {
            "tools": [
                {
                    "name": "scan_parcel",
                    "inputSchema": {"type": "object"},
                    "annotations": {"x-performed-by": "user"},
                }
            ]
        },
        "parcels",
    )
    catalog = parse_function_catalog(
        [
            {
                "name": "sign_delivery_note",
                "description": "Sign it.",
                "parameters": {},
                "x-performed-by": "user",
            }
        ],
        "delivery",
    )
    for spec in (openapi, mcp, catalog):
        assert declared_performer(spec.operations[0].extensions) == "user", spec.kind
        assert tool_performer(_tool({}, []), spec.operations[0]) == PerformedBy(
            rule="mark", evidence="x-performed-by: user"
        )
    # the document may keep a tool with the assistant against the heuristic, and a bad value is named
    op = openapi.operations[0]
    keep = op.model_copy(update={"extensions": {"x-performed-by": "assistant"}})
    assert tool_performer(_tool({"otp": {"type": "string"}}, ["otp"]), keep) is None
    bad = op.model_copy(update={"extensions": {"x-performed-by": "robot"}})
    with pytest.raises(ValueError, match="robot"):
        declared_performer(bad.extensions)


def test_a_bad_mark_leaves_the_tool_with_the_assistant_and_says_why() -> None:
    from envfactory_dagster.envgen.env_spec import EnvSpec

    tool = _tool({}, []).model_copy(update={"source_operation_id": "res_1:activateTicket"})
    spec = EnvSpec(class_name="Rail", title="", description="", domain="travel", entities=[], tools=[tool])
    op = parse_openapi_document(
        {
            "openapi": "3.0.3",
            "info": {"title": "Rail", "version": "1"},
            "paths": {
                "/a": {"post": {"operationId": "activateTicket", "x-performed-by": "robot", "responses": {}}}
            },
        },
        "openapi3",
        "rail",
    )
    marked, problems = mark_user_only_tools(spec, {"res_1": op})
    assert marked.tools[0].performed_by is None and "robot" in problems[0]


@pytest.fixture(scope="module")
def commerce_with_a_user_step() -> tuple[list[dict], list[dict], dict, tuple[str, str], str]:
    """Commerce trajectories where one write tool with a user-typed text input is made user-only,
    that input its secret (the heuristic's case: a value the user holds)."""
    registry = registry_for_domain(BUNDLED_CATALOG, "commerce")
    envs, _ = load_envs(registry)
    chains = [c for c in sample_chains(build_tool_graph(list(envs.values())), seed=1, n_chains=24) if c.valid]
    trajectories, _, _ = execute_chains([c.model_dump() for c in chains], list(envs.values()), seed=1)
    refined, _, _ = refine_trajectories(trajectories, registry, seed=1)
    chosen = None
    for row in refined:
        for turn in json.loads(row["trajectory_json"])["turns"]:
            for call in turn["calls"]:
                typed = [  # a value the user types, quoted in the request, distinctive as a code is
                    a
                    for a, s in call["argument_sources"].items()
                    if s["kind"] == "user"
                    and f'"{call["arguments"][a]}"' in turn["query"]
                    and len(str(call["arguments"][a])) >= 8
                ]
                if typed and chosen is None:
                    chosen = (call["env_id"], call["tool"]), typed[0]
    assert chosen is not None
    (env_id, tool), secret = chosen
    marked = []
    for row in registry:
        if row["env_id"] == env_id:
            spec = json.loads(row["spec_json"])
            for t in spec["tools"]:
                if t["name"] == tool:
                    t["performed_by"] = {
                        "rule": "secret_input_heuristic",
                        "evidence": "test",
                        "secret_inputs": [secret],
                    }
            row = {**row, "spec_json": json.dumps(spec)}
        marked.append(row)
    envs, _ = load_envs(marked)
    return refined, marked, envs, (env_id, tool), secret


def test_a_user_step_is_asked_for_run_by_the_user_and_replays_without_showing_the_secret(
    commerce_with_a_user_step,
) -> None:
    refined, registry, index, (env_id, tool), secret = commerce_with_a_user_step
    rows, _, metrics = build_sft_rows(refined, registry, conversational=True)
    with_steps = [r for r in rows if r["user_actions_json"] != "[]"]
    assert with_steps and metrics["rows_with_user_steps"] == len(with_steps)
    # the secret the user typed in the request stays on their side
    opening = [
        m["content"] for r in with_steps for m in json.loads(r["messages_json"]) if m["role"] == "user"
    ]
    assert any(WITHHELD in text for text in opening)
    by_id = {r["trajectory_id"]: r for r in refined}
    for row in with_steps:
        trajectory, envs_of_row = trajectory_of_row(by_id[row["trajectory_id"]], index)
        actions = json.loads(row["user_actions_json"])
        user_tool = actions[0]["tool"]
        assert user_tool not in [t["function"]["name"] for t in json.loads(row["tools_json"])]
        assert [t["function"]["name"] for t in json.loads(row["user_tools_json"])] == [user_tool]
        secrets = {
            str(c.arguments[secret])
            for t in trajectory.turns
            for c in t.calls
            if (c.env_id, c.tool) == (env_id, tool)
        }
        messages = json.loads(row["messages_json"])
        # replay the conversation: the assistant's calls, and each user step where the user does it
        replay = recorded_replay(trajectory)
        toolset = Toolset(envs_of_row, json.loads(json.dumps(replay.turn_states[0])), qualify="always")
        steps = iter(actions)
        for i, message in enumerate(messages):
            if message["role"] in ("user", "assistant"):
                text = (message.get("content") or "") + json.dumps(message.get("tool_calls") or [])
                assert not any(s in text for s in secrets), (message, secrets)  # the user keeps the secret
            for call in message.get("tool_calls") or []:
                assert call["function"]["name"] != user_tool  # the assistant never runs it
                toolset.call(call["function"]["name"], json.loads(call["function"]["arguments"]))
            if message["role"] == "assistant" and not message.get("tool_calls") and i + 1 < len(messages):
                step = next((a for a in actions if a["ask"] == message["content"]), None)
                if step is not None:
                    assert step is next(steps) and messages[i + 1]["role"] == "user"
                    recorded = trajectory.turns[step["turn"]].calls[step["call"]]
                    toolset.call(step["tool"], json.loads(json.dumps(recorded.arguments)))
        assert next(steps, None) is None
        end = (
            replay.turn_states[row["n_turns"]]
            if row["n_turns"] < len(trajectory.turns)
            else replay.final_states
        )
        assert toolset.dump_states() == end
    # without conversation the assistant cannot run the tool: its trajectories end before the step
    plain, plain_errors, _ = build_sft_rows(refined, registry)
    plain_turns = {r["trajectory_id"]: r["n_turns"] for r in plain}
    refused = {e["trajectory_id"] for e in plain_errors if "only the user can run" in e["reason"]}
    for row in with_steps:
        first_step = min(a["turn"] for a in json.loads(row["user_actions_json"]))
        assert (
            row["trajectory_id"] in refused
            if first_step == 0
            else plain_turns[row["trajectory_id"]] == first_step
        )
    user_tool_name = json.loads(with_steps[0]["user_actions_json"])[0]["tool"]
    assert all(
        c["function"]["name"] != user_tool_name
        for r in plain
        for m in json.loads(r["messages_json"])
        for c in m.get("tool_calls") or []
    )


def test_a_conversational_rl_task_has_the_simulated_user_run_the_step(commerce_with_a_user_step) -> None:
    refined, registry, envs, _, _ = commerce_with_a_user_step
    rows, _, metrics = build_rl_tasks(refined, registry, conversational=True)
    tasks = [rl_task_from_row(r) for r in rows if r["user_calls_json"] != "[]"]
    assert tasks and metrics["tasks_with_user_steps"] == len(tasks)
    task = tasks[0]
    [user_call] = task.user_calls
    assert user_call.name not in [t["function"]["name"] for t in task.tools]
    assert replay_rl_task(task, registry).total == 1.0
    env = ToolUseEnv(envs)
    env.reset(task)
    observation, *_ = env.step({"name": user_call.name, "arguments": user_call.arguments})
    assert "user_only_tool" in observation["messages"][-1]["content"]  # the policy cannot run it
    env.reset(task)
    golds = iter(task.gold_calls)
    for position in range(len(task.gold_calls) + 1):
        if position == user_call.position:
            observation, _, done, _, _ = env.step(
                f"Please {user_call.label} on your side and tell me how it went."
            )
            assert observation["messages"][-1]["role"] == "user" and not done
        else:
            gold = next(golds)
            env.step({"name": gold.name, "arguments": gold.arguments})
    _, reward, done, _, info = env.step("All done.")
    assert (
        done and reward == 1.0 and len(env.rollout.user_calls) == 1 and info["calls"] == len(task.gold_calls)
    )
    plain, _, plain_metrics = build_rl_tasks(refined, registry)
    assert (
        all(r["user_calls_json"] == "[]" for r in plain)
        and plain_metrics["turns_cut_for_user_only_tools"] > 0
    )


async def test_the_verl_interaction_runs_the_users_step_on_the_shared_rollout(
    commerce_with_a_user_step,
) -> None:
    from envfactory_dagster.export.verl_export import INTERACTION_NAME, verl_records
    from envfactory_dagster.serve.trainer_tools import RolloutTable
    from envfactory_dagster.serve.verl_interaction import CLOSING, EnvFactoryUserInteraction

    refined, registry, envs, _, _ = commerce_with_a_user_step
    rows, _, _ = build_rl_tasks(refined, registry, conversational=True)
    row = next(r for r in rows if r["user_calls_json"] != "[]")
    task = rl_task_from_row(row)
    [record] = verl_records([row])
    assert json.loads(record["extra_info"]["user_calls"]) == json.loads(row["user_calls_json"])
    assert [json.loads(t)["function"]["name"] for t in record["extra_info"]["user_tools"]] == [
        task.user_calls[0].name
    ]
    table = RolloutTable(envs, tasks_by_id={row["id"]: row})
    interaction = EnvFactoryUserInteraction({"name": INTERACTION_NAME, "table": table})
    request = await interaction.start_interaction(
        "req-user-step", **record["extra_info"]["interaction_kwargs"]
    )
    rollout = table.rollouts[request]
    messages = list(task.messages)
    golds = iter(task.gold_calls)
    for position in range(len(task.gold_calls) + 1):
        if position == task.user_calls[0].position:
            messages.append({"role": "assistant", "content": f"Could you {task.user_calls[0].label} for me?"})
            done, reply, _, _ = await interaction.generate_response(request, messages)
            assert not done and reply.startswith("Done.") and len(rollout.user_calls) == 1
            messages.append({"role": "user", "content": reply})
        else:
            gold = next(golds)
            rollout.call(gold.name, json.loads(json.dumps(gold.arguments)))
    messages.append({"role": "assistant", "content": "All done."})
    done, reply, score, _ = await interaction.generate_response(request, messages)
    assert (done, reply, score) == (True, CLOSING, 1.0)
