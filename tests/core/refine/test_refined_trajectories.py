"""Refinement: implicit, solvable queries with proofs checked by execution; both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envfactory_dagster.llm.gateway import LLMGateway, LLMSettings
from envfactory_dagster.llm.testing import ScriptedLLM
from envfactory_dagster.querygen.replay import environments_by_id, replay_trajectory
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.grounding import Condition, GroundingProof, StateLookup, check_proof
from envfactory_dagster.refine.refined_trajectories import leaked_names, refine_trajectories
from tests.fakes.refine_fixtures import SHOP, env_rows, sample_trajectories, trajectory_rows


def test_refined_queries_are_more_implicit_than_the_originals_and_every_proof_passes() -> None:
    rows, rejected, metrics = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    assert not rejected and len(rows) == 4
    assert metrics["proofs_passing_share"] == 1.0
    assert metrics["implicitness_uplift"] >= 0.2, metrics
    assert metrics["implicitness_refined"] == round(
        metrics["implicitness_original"] + metrics["implicitness_uplift"], 4
    )
    tools = [t for r in env_rows() for t in json.loads(r["spec_json"])["tools"]]
    for row in rows:
        trajectory = Trajectory.model_validate_json(row["trajectory_json"])
        for turn in trajectory.turns:
            assert not leaked_names(turn.query, [t["name"] for t in tools], ["customer_id", "order_id"])
        assert trajectory.turns[0].query not in row["original_queries"]
    assert metrics.get("op_implicit_reference") and metrics.get("op_action_compression")


def test_deterministic_per_seed() -> None:
    first = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=5)[0]
    assert first == refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=5)[0]


def test_proofs_are_checked_on_the_state_of_their_turn() -> None:
    trajectory = sample_trajectories()[1]
    envs = list(environments_by_id(env_rows()).values())[:1]
    replay = replay_trajectory(trajectory, envs)
    alan = StateLookup(
        world_id=SHOP,
        collection="customers",
        filter=[Condition(field="name", value="Alan Turing")],
        field="id",
    )
    paid = StateLookup(
        world_id=SHOP,
        collection="orders",
        filter=[Condition(field="customer_id", lookup=alan), Condition(field="status", value="paid")],
        field="id",
    )
    proof = GroundingProof(
        turn=0, call=1, argument="order_id", value="ord_0003", via="state_lookup", lookup=paid
    )
    assert check_proof(proof, replay, "") == ""
    ada = alan.model_copy(update={"filter": [Condition(field="city", op="contains", value="o")]})
    ambiguous = proof.model_copy(update={"lookup": ada, "value": "cus_0001"})
    assert "rows match" in check_proof(ambiguous, replay, "")


def test_inconsistent_and_unreadable_trajectories_are_rejected_with_reasons() -> None:
    bad = sample_trajectories()[1]
    bad.final_states[SHOP]["orders"]["ord_0003"]["status"] = "paid"
    rows, rejected, _ = refine_trajectories(
        [bad, {"id": "broken", "trajectory_json": "{"}], env_rows(), seed=0
    )
    assert rows == [] and {r["reason"].split(":")[0] for r in rejected} == {
        "inconsistent record",
        "unreadable",
    }


def test_llm_backend_accepts_grounded_rewrites_and_rejects_unsolvable_ones(tmp_path: Path) -> None:
    good = "Please show me Alan Turing's paid order, then cancel it."

    def refiner(query: str, declare: str) -> Any:
        def answer(messages: list[dict]) -> str:
            offered = json.loads(
                messages[-1]["content"]
                .split("Hideable values and how each can be recovered:\n")[1]
                .split("\n\nRelevant database rows")[0]
            )
            hidden = [h for h, v in offered.items() if str(v["value"]) not in query]
            declared = {"honest": hidden, "silent": [], "invented": [*hidden, "h99"]}[declare]
            return json.dumps({"query": query, "hidden_values": declared})

        return answer

    cases = {
        "good": (good, "honest"),
        "bad": ("Please cancel an order for me.", "honest"),  # unsolvable: which order?
        "silent": (good, "silent"),  # hides the order id without saying so
        "invented": (good, "invented"),  # claims a value it was never offered
    }
    for kind, (text, declare) in cases.items():
        fake = ScriptedLLM(refiner(text, declare))
        settings = LLMSettings(models={"refiner": "gpt-4o-mini"}, cache_dir=tmp_path / kind)
        with LLMGateway(settings, completion_fn=fake) as gateway:
            rows, _, metrics = refine_trajectories(
                [sample_trajectories()[1]], env_rows(), seed=0, backend="llm", gateway=gateway
            )
        query = Trajectory.model_validate_json(rows[0]["trajectory_json"]).turns[0].query
        if kind == "good":
            assert query == text and rows[0]["model"] == "gpt-4o-mini"
        else:
            assert query != text and metrics["llm_rewrites_rejected"] == 1, kind
