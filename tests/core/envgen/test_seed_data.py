"""Seed data: deterministic, realistic, inside the spec's constraints, referentially consistent."""

from __future__ import annotations

import random
import re

from test_codegen import load, shop_envs

from envfactory_dagster.envgen.naming import words
from envfactory_dagster.envgen.seed_data import generate_state, sample_pattern
from envfactory_dagster.envgen.service_vocabulary import ServiceVocabulary
from tests.fakes.example_env_spec import EXAMPLE_SPEC


def orders_spec():
    return next(s for s in shop_envs() if s.class_name == "AcmeOrders")


def test_same_seed_same_state_and_another_seed_differs() -> None:
    spec = orders_spec()
    assert generate_state(spec, 11) == generate_state(spec, 11)
    assert generate_state(spec, 11) != generate_state(spec, 12)


def test_rows_honour_counts_enums_constraints_and_foreign_keys() -> None:
    spec = orders_spec()
    state = generate_state(spec, 4)
    assert state["now"] == spec.clock and state["seed"] == 4
    for entity in spec.entities:
        rows = state[entity.collection]
        assert 5 <= len(rows) <= 50
        assert state["counters"][entity.collection] == len(rows)
        assert all(
            key == row[entity.key_field] and key.startswith(entity.id_prefix) for key, row in rows.items()
        )
    orders = state["orders"].values()
    assert all(o["customer_id"] in state["customers"] for o in orders)
    assert all(o["status"] in ("pending", "paid", "shipped", "cancelled") for o in orders)
    assert {o["status"] for o in orders} == {"pending", "paid", "shipped", "cancelled"}, (
        "lifecycle values spread"
    )
    assert all(o["total"] >= 0 and isinstance(o["total"], float) for o in orders)
    assert all(re.fullmatch(r"[A-Z]{3}-[0-9]{4}", o["sku_code"]) for o in orders)
    assert all(o["created_at"].startswith(("2025-", "2026-")) for o in orders)
    customers = state["customers"].values()
    assert all("@" in c["email"] and len(c["name"]) <= 80 for c in customers)


def test_state_loads_through_the_generated_model_and_new_ids_do_not_collide() -> None:
    spec = orders_spec()
    state = generate_state(spec, 9)
    env = load(spec)(state)
    assert env.dump_state() == state
    customer = sorted(state["customers"])[0]
    created = env.call("create_order", {"customer_id": customer, "total": 10.5})["order"]
    assert created["id"] not in state["orders"]


def test_pattern_sampler_matches_common_api_patterns() -> None:
    rng = random.Random(0)
    for pattern in (
        r"^[A-Z]{2}$",
        r"^\d{4}-\d{2}-\d{2}$",
        r"^(ord|inv)_[a-z0-9]{6,10}$",
        r"^\+?[1-9]\d{1,14}$",
        r"[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}",
    ):
        assert re.search(pattern, sample_pattern(pattern, rng)), pattern


def test_titles_are_made_of_subject_matter_not_tool_verbs_or_the_entity_name() -> None:
    # the tools' descriptions open with their verbs ("Find customers ...", "Place a new order",
    # "Cancel an order"): titles built from them read as filler ("Deadline for Submit")
    spec = EXAMPLE_SPEC
    vocabulary = ServiceVocabulary(spec)
    verbs = {words(t.name)[0] for t in spec.tools}
    for entity in spec.entities:
        titles = [vocabulary.title(random.Random(seed), entity) for seed in range(200)]
        assert len(set(titles)) > 5
        for title in titles:
            lowered = title.lower().split()
            assert not verbs & set(lowered), title
            assert set(lowered) - set(words(entity.name)), f"{title!r} only names the entity"
            first, _, second = title.lower().partition(" for ")
            assert first != second, title


def test_titles_leave_out_the_verb_a_tool_description_opens_with() -> None:
    # a tool on orders described as "Rename an order" (its name says another verb): "rename" is no
    # subject matter either, and a title "Rename Review" names nothing
    order = next(e for e in EXAMPLE_SPEC.entities if e.name == "Order")
    tool = next(t for t in EXAMPLE_SPEC.tools if t.entity == "Order" and "rename" not in t.name)
    tools = [
        t.model_copy(update={"description": "Rename an order"}) if t is tool else t
        for t in EXAMPLE_SPEC.tools
    ]
    vocabulary = ServiceVocabulary(EXAMPLE_SPEC.model_copy(update={"tools": tools}))
    titles = {vocabulary.title(random.Random(seed), order) for seed in range(200)}
    assert len(titles) > 5 and not any("rename" in title.lower().split() for title in titles), titles


def test_free_text_never_pairs_a_phrase_with_itself() -> None:
    vocabulary = ServiceVocabulary(EXAMPLE_SPEC)
    for entity in EXAMPLE_SPEC.entities:
        for seed in range(200):
            text = vocabulary.free_text(random.Random(seed), entity, {"note"}, "Ada").lower()
            pairs = re.findall(r"the (\w+(?: \w+)?) (?:for|with|against|after) the (\w+(?: \w+)?)", text)
            assert all(a != b for a, b in pairs), text
