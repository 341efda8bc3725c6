"""Semantic seed data, business rules and the mutation check, on the bundled catalog's own documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.rule_mutation import kill_rate, mutants, mutation_check
from envfactory_dagster.envgen.stages import env_code_rows, env_spec_rows
from envfactory_dagster.envgen.world_codes import is_currency_code
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.quality.world_quality import world_quality_row

CATALOG = Path(__file__).resolve().parents[3] / "envfactory_dagster" / "resource_catalog"


@pytest.fixture(scope="module")
def finance() -> tuple[list[dict], list[dict]]:
    resources = ingest_domain(CATALOG, "finance").resources
    proposals, _, _ = propose_environments(resources)
    specs, _, _ = env_spec_rows(proposals, resources)
    codes, _, _ = env_code_rows(specs, base_seed=0)
    return specs, codes


def _stripe(specs: list[dict], codes: list[dict], name: str) -> tuple[EnvSpec, dict, dict]:
    row = next(s for s in specs if s["class_name"] == name)
    code = next(c for c in codes if c["env_spec_id"] == row["id"])
    return EnvSpec.model_validate_json(row["spec_json"]), code, json.loads(code["seed_state_json"])


def test_every_field_says_what_it_means_and_why(finance) -> None:
    specs, _ = finance
    spec = EnvSpec.model_validate_json(specs[0]["spec_json"])
    fields = [f for e in spec.entities for f in e.fields]
    assert all(f.semantic and f.semantic_reason for f in fields)


def test_refunds_copy_their_payment_currency_and_stay_within_it(finance) -> None:
    _, _, state = _stripe(*finance, "StripeRefundsAndDisputes")
    payments, refunds = state["payment_intents"], state["refunds"]
    assert all(is_currency_code(p["currency"]) for p in payments.values())
    given: dict[str, int] = {}
    for refund in refunds.values():
        payment = payments[refund["payment_intent_id"]]
        assert refund["currency"] == payment["currency"]
        given[payment["id"]] = given.get(payment["id"], 0) + refund["amount"]
    assert all(total <= payments[key]["amount"] for key, total in given.items())


def test_create_refund_states_its_rules_and_defaults_from_the_payment(finance) -> None:
    spec, code, state = _stripe(*finance, "StripeRefundsAndDisputes")
    tool = next(t for t in spec.tools if t.name == "create_refund")
    kinds = {r.kind for r in tool.rules}
    assert {"parent_status", "within_parent_amount", "default_from_parent"} <= kinds
    assert all(r.evidence for r in tool.rules)
    from envfactory_dagster.runtime.loader import load_environment_class

    env = load_environment_class(code["source"], code["code_sha256"], spec.class_name)(state)
    payment = next(p for p in state["payment_intents"].values() if p["status"] != "succeeded")
    with pytest.raises(Exception, match="invalid_state"):
        env.call("create_refund", {"payment_intent_id": payment["id"]})
    succeeded = dict(payment, status="succeeded", currency="jpy", amount=5000)
    payments = {**state["payment_intents"], payment["id"]: succeeded}
    env.load_state({**state, "payment_intents": payments, "refunds": {}})
    refund = env.call("create_refund", {"payment_intent_id": payment["id"]})["refund"]
    assert refund["currency"] == "jpy" and refund["amount"] == 5000  # the whole payment, its currency


def test_mutants_of_every_rule_are_caught(finance) -> None:
    specs, codes = finance
    spec, code, state = _stripe(specs, codes, "StripeRefundsAndDisputes")
    made = mutants(code["source"])
    assert {m.operator for m in made} == {"flip", "drop"}
    outcomes = mutation_check([(spec, code["source"], state)])
    assert len(outcomes) == len(made) and (kill_rate(outcomes) or 0) >= 0.9


def test_world_quality_measures_and_can_fail(finance) -> None:
    specs, codes = finance
    from envfactory_dagster.envgen.stages import env_verification_rows, verified_env_rows

    verifications, _ = env_verification_rows(codes, specs)
    registry, _ = verified_env_rows(verifications, codes, specs)
    good = world_quality_row(registry, "finance", mutation=False)
    assert good["currency_valid_share"] >= 0.99 and good["inverted_pairs"] == 0
    assert good["write_tools_with_rules_share"] > 0
    # the same figures on a world whose seed rows are broken after the stage let them through
    broken = []
    for row in registry:
        state = json.loads(row["seed_state_json"])
        for table in state.values():
            if isinstance(table, dict):
                for key, r in list(table.items()):
                    if isinstance(r, dict) and "currency" in r:
                        table[key] = {**r, "currency": "ynb"}
        broken.append({**row, "seed_state_json": json.dumps(state)})
    bad = world_quality_row(broken, "finance", mutation=False)
    assert bad["currency_valid_share"] < 0.5
