"""Polling runs through the webserver: a missed answer is retried, an error in an answer is not."""

from __future__ import annotations

import pytest

from envfactory_dagster import webserver_client
from envfactory_dagster.webserver_client import RunInfo, WebserverError, wait_for_runs


def answers(*outcomes: object):
    """A stand-in for run_info that raises or returns each outcome in turn."""
    queue = list(outcomes)

    def run_info(url: str, run_id: str) -> RunInfo:
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return run_info


def busy() -> WebserverError:
    error = WebserverError("no answer from the Dagster webserver")
    error.__cause__ = TimeoutError("timed out")
    return error


def test_a_poll_the_busy_webserver_misses_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    started = RunInfo("r1", "STARTED", "finance", None, 3)
    done = RunInfo("r1", "SUCCESS", "finance", 9.0, 13)
    monkeypatch.setattr(webserver_client, "run_info", answers(started, busy(), done))
    assert wait_for_runs("http://127.0.0.1:1", ["r1"], timeout_s=60, poll_s=0) == [done]


def test_an_error_in_the_answer_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = WebserverError("webserver answered with errors: no run r1")
    monkeypatch.setattr(webserver_client, "run_info", answers(refused))
    with pytest.raises(WebserverError, match="no run r1"):
        wait_for_runs("http://127.0.0.1:1", ["r1"], timeout_s=60, poll_s=0)


def test_a_webserver_that_never_answers_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webserver_client, "run_info", answers(*(busy() for _ in range(3))))
    with pytest.raises(WebserverError, match="no answer"):
        wait_for_runs("http://127.0.0.1:1", ["r1"], timeout_s=0, poll_s=0)
