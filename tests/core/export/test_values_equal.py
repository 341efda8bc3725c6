"""`values_equal` (with its exact-type fast paths) agrees with the plain recursive definition."""

from __future__ import annotations

import math
import random
from typing import Any

from envfactory_dagster.export.reward import values_equal


def reference_equal(gold: Any, made: Any, rel_tol: float) -> bool:
    if isinstance(gold, bool) or isinstance(made, bool):
        return gold is made if isinstance(gold, bool) and isinstance(made, bool) else False
    if isinstance(gold, int | float) and isinstance(made, int | float):
        return math.isclose(gold, made, rel_tol=rel_tol, abs_tol=0.0) or gold == made
    if isinstance(gold, dict) and isinstance(made, dict):
        return gold.keys() == made.keys() and all(reference_equal(gold[k], made[k], rel_tol) for k in gold)
    if isinstance(gold, list) and isinstance(made, list):
        pairs = zip(gold, made, strict=False)
        return len(gold) == len(made) and all(reference_equal(g, m, rel_tol) for g, m in pairs)
    return gold == made


LEAVES = [True, False, 0, 1, 1.0, 1.0000001, 2, 0.0, float("nan"), None, "a", "1", "", [], {}]


def random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth == 0 or roll < 0.5:
        return rng.choice(LEAVES)
    if roll < 0.75:
        return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 2))]
    return {rng.choice("xyz"): random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def test_values_equal_agrees_with_the_reference() -> None:
    rng = random.Random(11)
    for _ in range(20000):
        gold = random_value(rng, 3)
        made = gold if rng.random() < 0.3 else random_value(rng, 3)
        for tol in (0.0, 1e-6):
            assert values_equal(gold, made, tol) is reference_equal(gold, made, tol), (gold, made, tol)
