"""The revise loop with scripted model answers through the real LLM gateway."""

from __future__ import annotations

from pathlib import Path

from envfactory_dagster.envgen.revise_loop import diff_size, synthesize_with_revisions
from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedLLM
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC
from tests.fakes.example_env_variants import example_source_with


def fenced(code: str) -> str:
    return f"Here is the module.\n\n```python\n{code}```\n"


def run(tmp_path: Path, answers: list[str], max_revisions: int = 3):
    fake = ScriptedLLM(answers)
    gateway = LLMGateway(
        LLMSettings(default_model="gpt-4o-mini", cache_dir=tmp_path),
        completion_fn=fake,
        embedding_fn=fake.aembedding,
    )
    outcome = synthesize_with_revisions(
        EXAMPLE_SPEC, "Shop API docs.", EXAMPLE_SEED_STATE, gateway, max_revisions=max_revisions
    )
    return outcome, fake


def test_wrong_first_version_is_revised_to_pass(tmp_path: Path) -> None:
    broken = example_source_with("get_keyerror")
    outcome, fake = run(tmp_path, [fenced(broken), fenced(EXAMPLE_ENV_SOURCE)])
    assert outcome.passed and outcome.stop_reason == "passed"
    assert outcome.final_code == EXAMPLE_ENV_SOURCE
    first, second = outcome.attempts
    assert (first.role, first.passed, second.role, second.passed) == ("coder", False, "reviser", True)
    assert "raised KeyError" in first.failures[0]
    assert first.code_sha256 == sha256_hex(broken) and second.code_sha256 == sha256_hex(EXAMPLE_ENV_SOURCE)
    assert second.diff_size == diff_size(broken, EXAMPLE_ENV_SOURCE) == 2
    assert second.tests_passed > first.tests_passed
    # the reviser saw the code and the failing report
    revise_prompt = fake.calls[1]["messages"][-1]["content"]
    assert "raised KeyError" in revise_prompt
    assert 'dict(self.table("orders")[order_id])' in revise_prompt


def test_hopeless_module_stops_at_the_limit_with_its_history(tmp_path: Path) -> None:
    versions = [
        example_source_with("get_keyerror", "cancel_keyerror", "create_no_fk_check"),
        example_source_with("cancel_keyerror", "create_no_fk_check"),
        example_source_with("create_no_fk_check"),
        example_source_with("cancel_in_place"),  # every test passes, copy-on-write still broken
    ]
    outcome, fake = run(tmp_path, [fenced(v) for v in versions], max_revisions=3)
    assert not outcome.passed and outcome.final_code is None
    assert outcome.stop_reason == "max_revisions"
    assert [a.attempt for a in outcome.attempts] == [1, 2, 3, 4]
    passed = [a.tests_passed for a in outcome.attempts]
    assert passed == sorted(set(passed)), passed  # each revision fixes something
    assert [a.code_sha256 for a in outcome.attempts] == [sha256_hex(v) for v in versions]
    assert all(a.failures and a.diff_size > 0 for a in outcome.attempts)
    assert outcome.attempts[-1].failures[0].startswith("copy_on_write")
    assert len(fake.calls) == 4


def test_no_improvement_compares_the_new_attempt_with_the_best_earlier_one(tmp_path: Path) -> None:
    versions = [
        example_source_with("get_keyerror", "cancel_keyerror"),  # two bugs
        example_source_with("get_keyerror"),  # one bug: better, keep going
        example_source_with("cancel_keyerror"),  # one bug: not better than the best: stop
        EXAMPLE_ENV_SOURCE,  # never asked for
    ]
    outcome, fake = run(tmp_path, [fenced(v) for v in versions])
    assert outcome.stop_reason == "no_improvement" and not outcome.passed
    first, second, third = (a.tests_passed for a in outcome.attempts)
    assert first < second == third
    assert f"best earlier attempt passed {second}" in outcome.stop_detail
    assert len(fake.calls) == 3


def test_equal_score_on_the_first_revision_stops_early(tmp_path: Path) -> None:
    versions = [example_source_with("get_keyerror"), example_source_with("cancel_keyerror")]
    outcome, _ = run(tmp_path, [fenced(v) for v in versions])
    assert outcome.stop_reason == "no_improvement" and len(outcome.attempts) == 2
