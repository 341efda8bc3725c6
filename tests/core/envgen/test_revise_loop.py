"""The revise loop with scripted model answers through the real LLM gateway: the model writes tool
bodies only (taken from a hand-written module and its broken variants), the skeleton comes from
the spec, bad answers are repaired or split, every attempt and call is recorded."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from envfactory_dagster.envgen.code_skeleton import module_skeleton, unwritten_tools
from envfactory_dagster.envgen.revise_loop import diff_size, synthesize_with_revisions
from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedLLM
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC
from tests.fakes.example_env_variants import example_source_with

TOOLS = [t.name for t in EXAMPLE_SPEC.tools]


def functions_of(source: str, names: list[str]) -> str:
    """The named methods of a module as a model would answer them: `def` + body, no decorator."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            start = node.lineno - 1  # the def line (decorators sit above it)
            out.append("\n".join(line[4:] for line in lines[start : node.end_lineno]))
    return "\n\n".join(out)


def asked(messages: list[dict[str, Any]]) -> list[str]:
    if len(messages) > 2:  # a repair note names what is still missing
        return (
            re.search(r"only the functions ([\w, ]+), complete", messages[-1]["content"]).group(1).split(", ")
        )
    tools = json.loads(re.split(r"Tools to (?:re)?write now \(JSON\):\n", messages[1]["content"])[1])
    return [t["name"] for t in tools]


def versions_model(versions: list[str]):
    """Coder answers from versions[0]; the reviser of attempt n answers from versions[n - 1]."""

    def answer(messages: list[dict[str, Any]]) -> str:
        attempt = re.search(r"Current module \(attempt (\d+)\)", messages[1]["content"])
        source = versions[int(attempt.group(1)) if attempt else 0]
        return f"Here you go.\n\n```python\n{functions_of(source, asked(messages))}\n```\n"

    return answer


def run(tmp_path: Path, answer, max_revisions: int = 3, **settings: Any):
    fake = ScriptedLLM(answer)
    gateway = LLMGateway(
        LLMSettings(default_model="gpt-4o-mini", cache_dir=tmp_path, **settings),
        completion_fn=fake,
        embedding_fn=fake.aembedding,
    )
    with gateway:
        outcome = synthesize_with_revisions(
            EXAMPLE_SPEC, EXAMPLE_SEED_STATE, gateway, max_revisions=max_revisions
        )
    return outcome, fake


def test_the_model_writes_bodies_only_and_the_skeleton_comes_from_the_spec(tmp_path: Path) -> None:
    outcome, fake = run(tmp_path, versions_model([EXAMPLE_ENV_SOURCE]))
    assert outcome.passed and len(outcome.attempts) == 1
    [attempt] = outcome.attempts
    assert attempt.tools_unwritten == [] and attempt.tools_asked == TOOLS
    assert [c.tools for c in attempt.calls] == [TOOLS[:4], TOOLS[4:]]  # 4096-token answers: 4 tools a call
    prompt = fake.calls[0]["messages"][1]["content"]
    assert "@tool(" in prompt and "raise NotImplementedError" in prompt  # the skeleton excerpt
    assert '"signature": "def search_customers(self, name: str) -> dict[str, Any]:"' in prompt
    skeleton = module_skeleton(EXAMPLE_SPEC)
    assert unwritten_tools(skeleton) == TOOLS
    # everything outside the bodies is the skeleton's
    frame = [
        line
        for line in outcome.final_code.splitlines()
        if line.startswith(("class ", "    @tool", "    def "))
    ]
    assert frame == [
        line for line in skeleton.splitlines() if line.startswith(("class ", "    @tool", "    def "))
    ]


def test_wrong_first_version_is_revised_to_pass(tmp_path: Path) -> None:
    broken = example_source_with("get_keyerror")
    outcome, fake = run(tmp_path, versions_model([broken, EXAMPLE_ENV_SOURCE]))
    assert outcome.passed and outcome.stop_reason == "passed"
    first, second = outcome.attempts
    assert (first.role, first.passed, second.role, second.passed) == ("coder", False, "reviser", True)
    assert "raised KeyError" in first.failures[0]
    assert first.code_sha256 == sha256_hex(first.source) and second.tests_passed > first.tests_passed
    assert second.tools_asked == ["get_order"]  # only the failing tool is rewritten
    assert second.diff_size == diff_size(first.source, second.source) == 2
    revise_prompt = fake.calls[-1]["messages"][1]["content"]
    assert "raised KeyError" in revise_prompt and 'dict(self.table("orders")[order_id])' in revise_prompt


def test_hopeless_module_stops_at_the_limit_with_its_history(tmp_path: Path) -> None:
    versions = [
        example_source_with("get_keyerror", "cancel_keyerror", "create_no_fk_check"),
        example_source_with("cancel_keyerror", "create_no_fk_check"),
        example_source_with("create_no_fk_check", "cancel_in_place"),  # one fix, one new bug
        example_source_with("cancel_in_place"),  # every test passes, copy-on-write still broken
    ]
    outcome, _ = run(tmp_path, versions_model(versions), max_revisions=3)
    assert not outcome.passed and outcome.final_code is None
    assert outcome.stop_reason == "max_revisions"
    assert [a.attempt for a in outcome.attempts] == [1, 2, 3, 4]
    passed = [a.tests_passed for a in outcome.attempts]
    assert passed == sorted(set(passed)), passed  # each revision fixes something
    assert all(a.failures and a.diff_size > 0 for a in outcome.attempts)
    assert outcome.attempts[-1].failures[0].startswith("copy_on_write")


def test_no_improvement_compares_the_new_attempt_with_the_best_earlier_one(tmp_path: Path) -> None:
    versions = [
        example_source_with("get_keyerror", "cancel_keyerror"),  # two bugs
        example_source_with("get_keyerror"),  # one bug: better, keep going
        example_source_with("get_keyerror"),  # the same bug again: not better than the best: stop
        EXAMPLE_ENV_SOURCE,  # never asked for
    ]
    outcome, _ = run(tmp_path, versions_model(versions))
    assert outcome.stop_reason == "no_improvement" and not outcome.passed
    first, second, third = (a.tests_passed for a in outcome.attempts)
    assert first < second == third
    assert f"best earlier attempt passed {second}" in outcome.stop_detail


def test_a_wrong_name_and_a_syntax_error_are_repaired_in_the_conversation(tmp_path: Path) -> None:
    good = versions_model([EXAMPLE_ENV_SOURCE])

    def sloppy(messages: list[dict[str, Any]]) -> str:
        text = good(messages)
        if len(messages) > 2:
            return text
        text = text.replace("def search_customers(", "def searchCustomers(")  # camelCase name
        return text.replace(
            "def cancel_order(self, order_id: str) -> dict[str, Any]:", "def cancel_order(self"
        )

    outcome, fake = run(tmp_path, sloppy)
    assert outcome.passed and len(outcome.attempts) == 1
    calls = outcome.attempts[0].calls
    assert [c.repair for c in calls] == [False, True, False, True]
    assert "`searchCustomers` is not one of the tools asked for" in calls[0].problems[0]
    assert "does not parse" in calls[2].problems[0]
    assert "only the functions search_customers" in fake.calls[1]["messages"][-1]["content"]


def test_a_cut_answer_keeps_its_complete_functions(tmp_path: Path) -> None:
    good = versions_model([EXAMPLE_ENV_SOURCE])
    outcome, _ = run(tmp_path, lambda m: good(m) if len(m) > 2 else good(m)[:380])  # first answers cut
    assert outcome.passed
    first = outcome.attempts[0].calls[0]
    # the answer stops inside list_orders at a line that parses: only the complete function is kept
    assert first.written == ["search_customers"] and "no body for list_orders" in first.problems[0]


def test_tools_per_call_follow_the_answer_limit(tmp_path: Path) -> None:
    outcome, _ = run(tmp_path, versions_model([EXAMPLE_ENV_SOURCE]), max_tokens_by_role={"coder": 1400})
    assert outcome.passed and [len(c.tools) for c in outcome.attempts[0].calls] == [2, 2, 1]


def test_unwritten_tools_fail_verification_and_go_to_the_reviser(tmp_path: Path) -> None:
    def lazy_then_good(messages: list[dict[str, Any]]) -> str:
        if "Current module" not in messages[1]["content"]:
            return "```python\n" + functions_of(EXAMPLE_ENV_SOURCE, ["get_order"]) + "\n```"
        return versions_model([EXAMPLE_ENV_SOURCE, EXAMPLE_ENV_SOURCE])(messages)

    outcome, _ = run(tmp_path, lazy_then_good, repair_retries=0)
    first, second = outcome.attempts
    assert first.tools_unwritten == [t for t in TOOLS if t != "get_order"] and not first.passed
    assert second.tools_asked == first.tools_unwritten and second.passed


def test_a_small_context_window_asks_for_fewer_tools_a_call(tmp_path: Path) -> None:
    outcome, fake = run(tmp_path, versions_model([EXAMPLE_ENV_SOURCE]), context_window_tokens=6000)
    [attempt] = outcome.attempts
    assert outcome.passed and attempt.context_splits > 0
    assert max(len(c.tools) for c in attempt.calls) < 4 and len(attempt.calls) > 2
    budget = (6000 - 4096) * 3  # prompt tokens left after the answer, at 3 characters a token
    sizes = [len(m["messages"][0]["content"]) + len(m["messages"][1]["content"]) for m in fake.calls]
    # a call for several tools fits; one tool is asked for even when its context alone does not
    assert all(size < budget for size, c in zip(sizes, attempt.calls, strict=True) if len(c.tools) > 1)
