"""The scripted-policy example runs offline and reaches reward 1.0 through both shapes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_scripted_policy_example_scores_one(tmp_path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "scripted_policy_rollout.py"), "--home", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert '"total": 1.0' in completed.stdout
    assert "verl-style tools reward: 1.0" in completed.stdout
