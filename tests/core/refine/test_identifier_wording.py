"""Wording of refined queries: identifiers are described, never written; references name the
entity of the field they stand for and are mentioned once per sentence."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.grounding import GroundingProof
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from envfactory_dagster.refine.template_refiner import Rendering, compose, merged_references
from tests.fakes.refine_fixtures import SHOP, USER, env_rows, execute_trajectory, out

ID_LITERAL = re.compile(r"\b[a-z]{2,4}_\d{4}\b")


def refined(trajectory: Trajectory, seed: int = 0) -> tuple[Trajectory, dict]:
    rows, rejected, _ = refine_trajectories([trajectory], env_rows(), seed=seed)
    assert not rejected and rows[0]["proofs_failed"] == 0
    return Trajectory.model_validate_json(rows[0]["trajectory_json"]), rows[0]


def test_no_identifier_is_written_when_the_original_wrote_none() -> None:
    trajectory = execute_trajectory(
        [
            (
                "Cancel Ada's pending order, then show me Alan's paid order.",
                [
                    (SHOP, "cancel_order", {"order_id": "ord_0001"}, {"order_id": USER}),
                    (SHOP, "get_order", {"order_id": "ord_0003"}, {"order_id": USER}),
                ],
            ),
            (
                "Order something for Grace for 12.5.",
                [(SHOP, "create_order", {"customer_id": "cus_0003", "total": 12.5}, {"total": USER})],
            ),
        ],
        chain_id="chain_ids",
        seed=5,
    )
    for seed in range(8):
        result, row = refined(trajectory, seed)
        for turn, original in zip(result.turns, row["original_queries"], strict=True):
            assert not ID_LITERAL.search(turn.query), turn.query
            assert turn.query != original  # every id here has a unique description: all turns refined
        proofs = [GroundingProof.model_validate(p) for p in json.loads(row["grounding_json"])]
        assert {p.via for p in proofs if str(p.value).startswith(("ord_", "cus_"))} == {"state_lookup"}


def test_an_identifier_without_description_drops_the_turn_with_its_reason() -> None:
    # the order is created in the turn and named by the user's own words, not by an earlier output:
    # it cannot be described from the state at the start of the turn, and a generated id is never
    # written, so no phrasing is provable: the turn (here the whole task) goes, with its reason
    trajectory = execute_trajectory(
        [
            (
                "Order something for Ada for 25 and cancel it right away.",
                [
                    (SHOP, "create_order", {"customer_id": "cus_0001", "total": 25.0}, {"total": USER}),
                    (SHOP, "cancel_order", {"order_id": "ord_0005"}, {"order_id": USER}),
                ],
            ),
        ],
        chain_id="chain_kept",
        seed=6,
    )
    rows, rejected, metrics = refine_trajectories([trajectory], env_rows(), seed=0)
    assert not rows and len(rejected) == 1
    assert rejected[0]["kind"] == "first_turn_unprovable"
    assert "order_id: no recoverable phrasing" in rejected[0]["reason"]
    assert metrics["drop_unsolvable_or_unasked"] >= 1


def test_a_value_read_from_an_output_names_the_entity_of_its_field() -> None:
    trajectory = execute_trajectory(
        [
            (
                "Order something for Grace for 12.5.",
                [(SHOP, "create_order", {"customer_id": "cus_0003", "total": 12.5}, {"total": USER})],
            ),
            (
                "List the orders of that same customer.",
                [
                    (
                        SHOP,
                        "list_orders",
                        {"customer_id": "cus_0003"},
                        {"customer_id": out(0, 0, "order.customer_id")},
                    )
                ],
            ),
        ],
        chain_id="chain_field",
        seed=7,
    )
    result, row = refined(trajectory)
    query = result.turns[1].query
    assert re.search(r"the customer of (the|my) order (you|we|that you) created", query), query
    proof = next(
        GroundingProof.model_validate(p)
        for p in json.loads(row["grounding_json"])
        if p["turn"] == 1 and p["argument"] == "customer_id"
    )
    assert proof.via == "output" and proof.path == "order.customer_id"


def test_a_reference_is_mentioned_once_per_sentence() -> None:
    trajectory = execute_trajectory(
        [
            (
                "Order something for Grace for 12.5.",
                [(SHOP, "create_order", {"customer_id": "cus_0003", "total": 12.5}, {"total": USER})],
            ),
            (
                "Show me that new order and then cancel it.",
                [
                    (SHOP, "get_order", {"order_id": "ord_0005"}, {"order_id": out(0, 0, "order.id")}),
                    (SHOP, "cancel_order", {"order_id": "ord_0005"}, {"order_id": out(0, 0, "order.id")}),
                ],
            ),
        ],
        chain_id="chain_once",
        seed=8,
    )
    query = refined(trajectory)[0].turns[1].query
    # the created order is named once by what was done to it; the second mention is a short
    # back-reference, and the change is asked for with its verb
    assert len(re.findall(r"(the|my) order (you|we|that you) created", query)) == 1, query
    assert re.search(r"cancel (it|that order|(the|my) order (you|we|that was) just looked up)", query), query
    assert "mark" not in query, query


def test_values_from_one_output_share_one_mention() -> None:
    anchor = "the transfer you just created"

    def rendering(argument: str, value: str, head: str = "") -> tuple[str, Rendering]:
        proof = GroundingProof(turn=0, call=1, argument=argument, value=value, via="output")
        phrase = compose(head, anchor, False) if head else f'"{value}"'
        return argument, Rendering(phrase, proof, bool(head), head=head, anchor=anchor if head else "")

    texts = merged_references(
        [
            rendering("quote_id", "quo_0012", "quote"),
            rendering("reference", "simple"),
            rendering("recipient_id", "rec_0007", "recipient"),
        ],
        lambda argument, r: f"{argument} {r.phrase}",
        lambda heads, anchor, labelled: compose(" and ".join(heads), anchor, labelled),
    )
    assert texts == ["the quote and recipient of the transfer you just created", 'reference "simple"']


def test_a_repeated_mention_is_worded_the_same_whatever_the_hash_seed() -> None:
    # two nouns for one phrase ("parent item", "item"): set order alone decided which one a later
    # mention took, so partitions run in spawned workers differed from run to run
    code = (
        "from envfactory_dagster.refine.template_refiner import mention_once\n"
        "print(mention_once(['show the item \"Draft\"', 'then delete the item \"Draft\"'],"
        " [('the item \"Draft\"', 'parent item'), ('the item \"Draft\"', 'item')]))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(4)
    }
    assert len(outputs) == 1, outputs
