"""verify_environment on the example environment and on broken variants of it (one known bug each)."""

from __future__ import annotations

import pytest

from envfactory_dagster.envgen.test_generation import generate_tool_tests
from envfactory_dagster.envgen.verification import VerificationReport, verify_batch, verify_environment
from envfactory_dagster.lineage import sha256_hex
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC
from tests.fakes.example_env_variants import example_source_with


@pytest.fixture(scope="module")
def reports() -> dict[str, VerificationReport]:
    bugs = ["get_keyerror", "create_no_fk_check", "cancel_in_place", "search_bad_output", "get_wrong_kind"]
    items = [(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)]
    items += [(EXAMPLE_SPEC, example_source_with(bug), EXAMPLE_SEED_STATE) for bug in bugs]
    items.append((EXAMPLE_SPEC, "this is not python(", EXAMPLE_SEED_STATE))
    items.append((EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, {"customers": {"c1": {"id": "c1"}}}))
    return dict(zip(["good", *bugs, "syntax_error", "bad_seed"], verify_batch(items), strict=True))


def test_example_environment_passes_every_check(reports: dict[str, VerificationReport]) -> None:
    report = reports["good"]
    assert report.passed, report.failures
    assert report.code_sha256 == sha256_hex(EXAMPLE_ENV_SOURCE)
    assert {c.name for c in report.checks} >= {
        "import",
        "tool_schemas",
        "roundtrip",
        "tool_tests",
        "output_schemas",
        "state_effects",
        "read_only",
        "copy_on_write",
        "determinism",
    }
    assert report.roundtrip_ok and report.determinism_ok and report.replay_digest
    assert report.tests_run == report.tests_passed >= 3 * len(EXAMPLE_SPEC.tools)
    assert all(count >= 3 for count in report.tests_per_tool.values())
    assert report.latency_p50_us is not None and 0 < report.latency_p50_us <= report.latency_p95_us
    assert report.sandbox_status == "ok"


def test_same_module_gives_the_same_replay_digest() -> None:
    again = verify_environment(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)
    first = verify_environment(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)
    assert again.passed and again.replay_digest == first.replay_digest


def test_tests_cover_valid_boundary_and_invalid_for_every_tool() -> None:
    tests = generate_tool_tests(EXAMPLE_SPEC, EXAMPLE_SEED_STATE)
    for tool in EXAMPLE_SPEC.tools:
        categories = {t.category for t in tests if t.tool == tool.name}
        assert categories == {"valid", "boundary", "invalid"}, tool.name
    cancel_valid = next(t for t in tests if t.tool == "cancel_order" and t.category == "valid")
    # only orders a cancel may move (pending or paid) are valid candidates
    assert [a["order_id"] for a in cancel_valid.arguments] == ["ord_0001", "ord_0003"]
    labels = {t.label for t in tests if t.tool == "cancel_order"}
    assert "unknown order_id" in labels and "status 'shipped' cannot become 'cancelled'" in labels


@pytest.mark.parametrize(
    ("variant", "first_failure"),
    [
        ("get_keyerror", "tool_tests: get_order ("),  # the empty-table boundary or the unknown id
        (
            "create_no_fk_check",
            "tool_tests: create_order (invalid: unknown referenced customer_id): succeeded",
        ),
        ("cancel_in_place", "copy_on_write: a tool mutated a shared row in place"),
        ("search_bad_output", "output_schemas: search_customers (valid"),
        ("get_wrong_kind", "tool_schemas: tool 'get_order' is write, the spec says read"),
        ("syntax_error", "static_screen: line 1: syntax error"),
        ("bad_seed", "seed_state: the seed state does not load"),
    ],
)
def test_each_known_bug_fails_with_a_ranked_reason(
    reports: dict[str, VerificationReport], variant: str, first_failure: str
) -> None:
    report = reports[variant]
    assert not report.passed
    assert report.failures[0].startswith(first_failure), report.failures


def test_in_place_mutation_also_breaks_replay(reports: dict[str, VerificationReport]) -> None:
    assert not reports["cancel_in_place"].determinism_ok
    assert reports["cancel_in_place"].tests_passed == reports["cancel_in_place"].tests_run


def test_a_write_that_changes_nothing_names_the_field() -> None:
    report = verify_environment(
        EXAMPLE_SPEC, example_source_with("cancel_changes_nothing"), EXAMPLE_SEED_STATE
    )
    problems = [f for f in report.failures if "changed nothing" in f]
    assert problems and all("Order.status stayed" in p for p in problems)


def test_a_tool_that_refuses_every_candidate_names_its_preconditions() -> None:
    report = verify_environment(EXAMPLE_SPEC, example_source_with("cancel_refuses_all"), EXAMPLE_SEED_STATE)
    refused = [f for f in report.failures if "every candidate was refused" in f]
    assert refused, report.failures
    # the refusal's own message, how many candidates were tried, and what the spec requires
    assert all(
        "'invalid_state' (Order" in f and "candidate(s)" in f and "preconditions:" in f for f in refused
    )
