"""The fast paths of refinement give the verdicts of the slow forms they replace."""

from __future__ import annotations

import copy
import random
import re

from envfactory_dagster.querygen.replay import TrajectoryReplayer, environments_by_id, replay_trajectory
from envfactory_dagster.querygen.surface import contains_token
from tests.fakes.refine_fixtures import env_rows, sample_trajectories

ALPHABET = "aAbB_1 .-Kk\u212a\u017fsS\u0130i"  # word/non-word ASCII and letters with odd case folding


def test_contains_token_matches_the_word_boundary_regex() -> None:
    rng = random.Random(3)
    for _ in range(20000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 10)))
        token = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3)))
        for ignore_case in (True, False):
            pattern = rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])"
            expected = re.search(pattern, text, flags=re.IGNORECASE if ignore_case else 0) is not None
            assert contains_token(text, token, ignore_case=ignore_case) is expected, (text, token)


def test_repeated_replays_from_snapshots_equal_fresh_replays() -> None:
    index = environments_by_id(env_rows())
    for trajectory in sample_trajectories():
        envs = [index[e] for e in trajectory.env_ids]
        replayer = TrajectoryReplayer(trajectory, envs)
        first = copy.deepcopy(replayer.run())
        call = trajectory.turns[0].calls[0]
        replayer.run(override=(0, 0, {**call.arguments, "unexpected": 1}))  # another run in between
        again = replayer.run()
        fresh = replay_trajectory(trajectory, envs)
        assert first == again == fresh
        assert first.final_states == trajectory.final_states
        assert first.turn_states[0] == trajectory.initial_states  # snapshots kept the turn-start state
