"""Fixtures: the hand-written ShopOrders environment as a registry entry, and an RL task over it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pandas as pd
import pytest

from envfactory_dagster.export.rl_task_model import RLGoldCall, RLTask
from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset
from envfactory_dagster.storage.partition_store import PartitionStore
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC

ENV_ID = "env_shoporders_test"
# create -> read -> transition: the chain every serving shape must replay
GOLD_CHAIN = [
    ("create_order", {"customer_id": "cus_0002", "total": 25.0}),
    ("get_order", {"order_id": "ord_0005"}),
    ("cancel_order", {"order_id": "ord_0005"}),
]
# the same chain under the training names RL tasks use (`<ClassName>__<tool>` in every task)
TRAINING_PREFIX = "ShopOrders__"
TRAINING_CHAIN = [(TRAINING_PREFIX + name, arguments) for name, arguments in GOLD_CHAIN]


def shop_env() -> VerifiedEnvironment:
    return VerifiedEnvironment(
        env_id=ENV_ID,
        class_name="ShopOrders",
        source=EXAMPLE_ENV_SOURCE,
        code_sha256=sha256_hex(EXAMPLE_ENV_SOURCE),
        spec_json=EXAMPLE_SPEC.model_dump_json(),
        seed_state_json=json.dumps(EXAMPLE_SEED_STATE),
    )


def expected_final_state() -> dict[str, Any]:
    toolset = Toolset([shop_env()], {ENV_ID: copy.deepcopy(EXAMPLE_SEED_STATE)})
    for name, arguments in GOLD_CHAIN:
        toolset.call(name, arguments)
    return toolset.dump_states()[ENV_ID]


def shop_task() -> RLTask:
    env = shop_env()
    return RLTask(
        id="task_test",
        domain="commerce",
        trajectory_id="traj_test",
        chain_id="chain_test",
        env_ids=[ENV_ID],
        messages=[
            {"role": "system", "content": "You are the order desk assistant."},
            {"role": "user", "content": "Place a 25 dollar order for Alan Turing, check it, then cancel it."},
        ],
        tools=Toolset([env], qualify="always").openai_tools(),
        initial_states={ENV_ID: copy.deepcopy(EXAMPLE_SEED_STATE)},
        gold_calls=[
            RLGoldCall(name=name, arguments=arguments, env_id=ENV_ID, turn=0)
            for name, arguments in TRAINING_CHAIN
        ],
        gold_final_states={ENV_ID: expected_final_state()},
    )


@pytest.fixture
def env() -> VerifiedEnvironment:
    return shop_env()


@pytest.fixture
def task() -> RLTask:
    return shop_task()


@pytest.fixture
def registry_home(tmp_path) -> str:
    """A data directory whose `verified_envs` registry holds the ShopOrders environment."""
    env = shop_env()
    row = {name: getattr(env, name) for name in env.__dataclass_fields__}
    PartitionStore(str(tmp_path)).write(
        "verified_envs", "commerce", pd.DataFrame([{**row, "domain": "commerce"}])
    )
    return str(tmp_path)
