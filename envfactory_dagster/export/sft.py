"""`sft_dataset`: one chat conversation per refined trajectory, and its standard exports.

Row: OpenAI chat `messages` (system; per turn: user, one assistant `tool_calls` message per
dependency level each followed by its `tool` results, the closing answer; see chat_messages.py),
the `tools` list, and lineage. A turn whose gold calls pass an identifier no earlier message shows
(refinement hid it behind a reference only a look-up the gold calls skip would resolve) would
teach a model to guess ids: the row keeps the turns before it (none left: an error row). Tool
names follow one rule in every row (`<ClassName>__<tool>`). Writers: OpenAI JSONL, ShareGPT for
LLaMA-Factory (with its `dataset_info.json` entry), and Parquet per split with `messages` / `tools`
as structured columns (see training_parquet.py).

User-only tools (envgen/user_only.py) are not in a row's `tools` (the assistant cannot run them);
they are listed in `user_tools_json`. Conversational mode turns each of their calls into a
user-performed step (export/user_actions.py, recorded in `user_actions_json`); otherwise a row
keeps the turns before the first such step (`turns_cut_for_user_only_tools`). A row none of whose
user or assistant messages may show a secret input of a user step keeps the turns before the first
that does (`turns_cut_for_secret_leaks`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from envfactory_dagster.export.chat_messages import trajectory_messages, turn_order_check
from envfactory_dagster.export.conversation import Clarification, clarify, conversation_ending
from envfactory_dagster.export.export_audit import unseen_ids
from envfactory_dagster.export.turn_answers import AnswerJob, tool_kinds, write_answers
from envfactory_dagster.export.user_actions import (
    UserAction,
    first_user_turn,
    leaked_secret,
    secret_values,
    user_actions,
    user_only_specs,
)
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    Replay,
    environments_by_id,
    recorded_replay,
    trajectory_of_row,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset, exported_tool_names

STAGE = "sft_dataset"
SHAREGPT_NAME = "envfactory_sft"
SPLITS = ("train", "validation")


def training_tool_names(envs: list[VerifiedEnvironment]) -> dict[tuple[str, str], str]:
    """(env_id, tool) -> the name every training export uses (always `<ClassName>__<tool>`)."""
    return {target: name for name, target in exported_tool_names(envs, "always").items()}


def training_tools(envs: list[VerifiedEnvironment], *, user_only: bool = False) -> list[dict[str, Any]]:
    """The OpenAI `tools` list of a trajectory's environments, under the training names: the
    assistant's tools, or (`user_only=True`) the tools only the user runs (envgen/user_only.py)."""
    names = training_tool_names(envs)
    users = {names[key] for key in user_only_specs(envs)}
    return [
        t
        for t in Toolset(envs, qualify="always").openai_tools()
        if (t["function"]["name"] in users) == user_only
    ]


def conversation(
    trajectory: Trajectory,
    envs: list[VerifiedEnvironment],
    answers: list[str],
    replay: Replay | None = None,
    clarifications: Sequence[Clarification] = (),
    actions: Mapping[tuple[int, int], UserAction] | None = None,
) -> tuple[list[dict[str, Any]], list[int]]:
    """(messages, index of each turn's user message). A changed call order is checked from the
    recorded turn states (`replay`, rebuilt from the record when omitted and needed); `actions`:
    the user-performed steps (conversational mode)."""
    cache: dict[str, Any] = {}

    def order_ok(turn: int, order: list[int]) -> bool:
        if "check" not in cache:
            cache["check"] = turn_order_check(trajectory, envs, replay or recorded_replay(trajectory))
        return cache["check"](turn, order)

    return trajectory_messages(
        trajectory, training_tool_names(envs), answers, order_ok, clarifications, actions
    )


def answer_jobs(
    refined: Iterable[Mapping[str, Any]], index: Mapping[str, VerifiedEnvironment], stage: str
) -> tuple[list[tuple[Mapping[str, Any], AnswerJob, list[VerifiedEnvironment]]], list[dict[str, Any]]]:
    """The readable rows with their answer jobs, and error rows for the unreadable ones."""
    jobs, errors = [], []
    for row in refined:
        try:
            trajectory, envs = trajectory_of_row(row, index)
        except ValueError as exc:
            errors.append({"trajectory_id": row.get("trajectory_id"), "stage": stage, "reason": str(exc)})
            continue
        jobs.append((row, AnswerJob(trajectory, training_tool_names(envs), tool_kinds(envs)), envs))
    return jobs, errors


def build_sft_rows(
    refined: Iterable[Mapping[str, Any]],
    envs: EnvironmentRows,
    *,
    backend: str = "template",
    gateway: Any = None,
    conversational: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """One SFT row per refined trajectory row; returns (rows, error rows, metrics).

    `backend="llm"` writes the turns' closing answers with the gateway (see turn_answers.py).
    `conversational=True` adds, where a trajectory allows it, one clarifying exchange (the user
    leaves a value out, the assistant asks, a user simulator answers; export/conversation.py),
    recorded in `clarifications_json`.
    Columns: id, trajectory_id, domain, chain_id, env_ids, resource_ids, seed, split, pool,
    messages_json, tools_json, user_tools_json, user_actions_json, clarifications_json, n_turns,
    n_calls, n_call_messages, backend, answer_backend, model, prompt_version.
    """
    jobs, errors = answer_jobs(refined, environments_by_id(envs), STAGE)
    answers, answer_metrics = write_answers([job for _, job, _ in jobs], backend=backend, gateway=gateway)
    tools_of: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # tool lists depend only on the envs
    rows = []
    cut_turns = cut_for_user_tools = cut_for_secrets = 0
    simulator_problems: list[str] = []
    for (row, job, envs_of_task), turn_answers in zip(jobs, answers, strict=True):
        trajectory = job.trajectory
        user_tools = user_only_specs(envs_of_task)
        actions: dict[tuple[int, int], UserAction] = {}
        if user_tools and conversational:
            actions = user_actions(trajectory, user_tools, training_tool_names(envs_of_task))
        elif user_tools:  # the assistant cannot run these tools: keep the turns before the first
            first = first_user_turn(trajectory, user_tools)
            if first == 0:
                errors.append(
                    {
                        "trajectory_id": trajectory.id,
                        "stage": STAGE,
                        "reason": "turn 0 needs a tool only the user can run (not conversational mode)",
                    }
                )
                continue
            if first is not None:
                cut_for_user_tools += len(trajectory.turns) - first
                trajectory = trajectory.model_copy(update={"turns": trajectory.turns[:first]})
                turn_answers = turn_answers[:first]
        clarifications: list[Clarification] = []
        if conversational:
            clarification, problems = clarify(
                trajectory, seed=trajectory.seed, gateway=gateway, user_steps=actions.keys()
            )
            simulator_problems += problems
            clarifications = [clarification] if clarification is not None else []
        messages, turn_starts = conversation(
            trajectory, envs_of_task, turn_answers, clarifications=clarifications, actions=actions
        )
        env_key = tuple(trajectory.env_ids)
        if env_key not in tools_of:
            tools_of[env_key] = training_tools(envs_of_task)
        guessed = unseen_ids(messages, tools_of[env_key])
        secrets = [
            v
            for (t, i), a in actions.items()
            for v in secret_values(trajectory.turns[t].calls[i], a.secret_inputs)
        ]
        leak = leaked_secret(messages, secrets)
        bad_message = min(
            [g["message"] for g in guessed[:1]] + ([leak] if leak is not None else []), default=None
        )
        if bad_message is not None:  # keep the turns before the first id no message showed, or a secret
            bad_turn = max(t for t, start in enumerate(turn_starts) if start <= bad_message)
            if guessed and guessed[0]["message"] == bad_message:
                cut_turns += len(turn_starts) - bad_turn
                reason = f"turn 0 passes {guessed[0]['value']!r}, which no message shows before"
            else:
                cut_for_secrets += len(turn_starts) - bad_turn
                reason = "turn 0 shows a secret input of a user-performed step"
            if bad_turn == 0:
                errors.append({"trajectory_id": trajectory.id, "stage": STAGE, "reason": reason})
                continue
            messages = messages[: turn_starts[bad_turn]]
            trajectory = trajectory.model_copy(update={"turns": trajectory.turns[:bad_turn]})
            clarifications = [c for c in clarifications if c.turn < bad_turn]
            actions = {k: a for k, a in actions.items() if a.turn < bad_turn}
        if clarifications:  # the recorded conversation reaches the gold state: does the judge agree?
            ending, problems = conversation_ending(
                messages,
                trajectory.goal or trajectory.turns[0].query,
                gold_reached=True,
                gateway=gateway,
                stage=STAGE,
            )
            simulator_problems += [f"{trajectory.id}: {p}" for p in problems]
            clarifications = [c.model_copy(update={"ending": ending}) for c in clarifications]
        rows.append(
            {
                "id": content_id([trajectory.id, messages], "sft_"),
                "trajectory_id": trajectory.id,
                "domain": trajectory.domain,
                "chain_id": trajectory.chain_id,
                "env_ids": trajectory.env_ids,
                "resource_ids": list(row.get("resource_ids") or []),
                "seed": trajectory.seed,
                "split": row.get("split") or "train",
                "pool": row.get("pool", "sft"),
                "messages_json": canonical_json(messages),
                "tools_json": canonical_json(tools_of[env_key]),
                "user_tools_json": canonical_json(
                    training_tools(envs_of_task, user_only=True) if user_tools else []
                ),
                "user_actions_json": canonical_json([a.model_dump(mode="json") for a in actions.values()]),
                "clarifications_json": canonical_json([c.model_dump(mode="json") for c in clarifications]),
                "n_turns": len(trajectory.turns),
                "n_calls": sum(len(t.calls) for t in trajectory.turns),
                "n_call_messages": sum(1 for m in messages if m.get("tool_calls")),
                "backend": trajectory.backend,
                "answer_backend": backend,
                "model": trajectory.model,
                "prompt_version": trajectory.prompt_version,
            }
        )
    endings = [c["ending"] for r in rows for c in json.loads(r["clarifications_json"])]
    metrics = {
        "sft_rows": len(rows),
        "errors": len(errors),
        "turns_cut_for_unseen_ids": cut_turns,
        "turns_cut_for_user_only_tools": cut_for_user_tools,
        "turns_cut_for_secret_leaks": cut_for_secrets,
        "rows_with_user_steps": sum(r["user_actions_json"] != "[]" for r in rows),
        "user_steps": sum(len(json.loads(r["user_actions_json"])) for r in rows),
        "call_messages": sum(r["n_call_messages"] for r in rows),
        "calls": sum(r["n_calls"] for r in rows),
        "clarified_rows": sum(r["clarifications_json"] != "[]" for r in rows),
        "judged_endings": sum(1 for e in endings if e["ended_by"] == "judge"),
        "judge_disagreements": sum(1 for e in endings if not e["done"]),
        "user_simulator_problems": len(simulator_problems),
        "user_simulator_problem_samples": simulator_problems[:5],
        **answer_metrics,
    }
    return rows, errors, metrics


def openai_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """`{"messages", "tools"}` of a row: OpenAI fine-tuning's line (arguments as JSON text)."""
    return {"messages": json.loads(row["messages_json"]), "tools": json.loads(row["tools_json"])}


def write_openai_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """One `openai_record` per line (OpenAI fine-tuning; TRL via `load_dataset("json", ...)`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(openai_record(row), ensure_ascii=False) + "\n")
            count += 1
    return count


def sharegpt_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """LLaMA-Factory ShareGPT: human / function_call / observation / gpt entries, system, tools.

    An assistant message's calls are ONE `function_call` entry (JSON list of `{name, arguments}`)
    and their results ONE `observation` entry (the result's JSON, or a JSON list of the results in
    call order when there are several), so entries alternate as LLaMA-Factory requires.
    """
    messages = json.loads(row["messages_json"])
    conversations = []
    results: list[str] = []
    for m in messages[1:]:
        if m["role"] == "tool":
            results.append(m["content"])
            continue
        if results:
            value = results[0] if len(results) == 1 else "[" + ",".join(results) + "]"
            conversations.append({"from": "observation", "value": value})
            results = []
        if m["role"] == "user":
            conversations.append({"from": "human", "value": m["content"]})
        elif m.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in m["tool_calls"]
            ]
            conversations.append({"from": "function_call", "value": json.dumps(calls, ensure_ascii=False)})
        else:
            conversations.append({"from": "gpt", "value": m["content"]})
    tools = [t["function"] for t in json.loads(row["tools_json"])]
    return {
        "conversations": conversations,
        "system": messages[0]["content"],
        "tools": json.dumps(tools, ensure_ascii=False),
    }


def sharegpt_dataset_info(dataset_name: str = SHAREGPT_NAME) -> dict[str, Any]:
    """The `dataset_info.json` entry LLaMA-Factory loads the ShareGPT file by (every column and tag
    spelled out: when `columns`/`tags` is given, LLaMA-Factory sets the omitted ones to None)."""
    return {
        dataset_name: {
            "file_name": f"{dataset_name}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "observation_tag": "observation",
                "function_tag": "function_call",
                "system_tag": "system",
            },
        }
    }


def write_sharegpt(
    rows: Iterable[Mapping[str, Any]], directory: str | Path, dataset_name: str = SHAREGPT_NAME
) -> int:
    """`<dataset_name>.json` (ShareGPT list) and `dataset_info.json` with its LLaMA-Factory entry."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    records = [sharegpt_record(r) for r in rows]
    (directory / f"{dataset_name}.json").write_text(
        json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    (directory / "dataset_info.json").write_text(
        json.dumps(sharegpt_dataset_info(dataset_name), indent=2), encoding="utf-8"
    )
    return len(records)


def sft_parquet_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as `SFT_SCHEMA` stores it (tool-call arguments and tools as JSON text)."""
    from envfactory_dagster.export.training_parquet import SFT_SCHEMA  # pyarrow: not on the serving path

    messages = [
        {
            "role": m["role"],
            "content": m.get("content"),
            "tool_calls": m.get("tool_calls"),  # arguments are JSON text already: the json column's storage
            "tool_call_id": m.get("tool_call_id"),
        }
        for m in json.loads(row["messages_json"])
    ]
    return {
        **{k: row.get(k) for k in SFT_SCHEMA.names if k not in ("messages", "tools")},
        "messages": messages,
        "tools": [canonical_json(t) for t in json.loads(row["tools_json"])],
    }


def write_sft_parquet(rows: Iterable[Mapping[str, Any]], directory: str | Path) -> dict[str, int]:
    """`<split>.parquet` per non-empty split (`SFT_SCHEMA`); returns rows per split."""
    from envfactory_dagster.export.training_parquet import SFT_SCHEMA, write_training_parquet

    records = [sft_parquet_record(r) for r in rows]
    counts = {split: [r for r in records if r["split"] == split] for split in SPLITS}
    # no file for an empty split: `datasets` cannot read a Parquet file without rows
    return {
        split: write_training_parquet(rows, SFT_SCHEMA, Path(directory) / f"{split}.parquet") if rows else 0
        for split, rows in counts.items()
    }
