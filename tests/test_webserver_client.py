"""Polling runs through the webserver: a missed answer is retried, an error in an answer is not."""

from __future__ import annotations

import pytest

from envfactory_dagster import webserver_client
from envfactory_dagster.webserver_client import RunInfo, WebserverError, wait_for_runs


def answers(*outcomes: object):
    """A stand-in for run_statuses that raises or returns each outcome in turn."""
    queue = list(outcomes)

    def run_statuses(url: str, run_ids: list[str]) -> dict[str, str]:
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return run_statuses


def busy() -> WebserverError:
    error = WebserverError("no answer from the Dagster webserver")
    error.__cause__ = TimeoutError("timed out")
    return error


def test_a_poll_the_busy_webserver_misses_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    done = RunInfo("r1", "SUCCESS", "finance", 9.0, 13)
    described = []
    monkeypatch.setattr(
        webserver_client, "run_statuses", answers({"r1": "STARTED"}, busy(), {"r1": "SUCCESS"})
    )
    monkeypatch.setattr(webserver_client, "run_info", lambda url, run_id: described.append(run_id) or done)
    assert wait_for_runs("http://127.0.0.1:1", ["r1"], timeout_s=60, poll_s=0) == [done]
    assert described == ["r1"]  # the full description (step stats) once, when the run has ended


def test_runs_the_webserver_does_not_know_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    graphql, _ = graphql_answers(
        {"runsOrError": {"__typename": "Runs", "results": [{"runId": "r1", "status": "QUEUED"}]}}
    )
    monkeypatch.setattr(webserver_client, "graphql", graphql)
    with pytest.raises(WebserverError, match="no run r2"):
        webserver_client.run_statuses("http://127.0.0.1:1", ["r1", "r2"])


def test_an_error_in_the_answer_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = WebserverError("webserver answered with errors: no run r1")
    monkeypatch.setattr(webserver_client, "run_statuses", answers(refused))
    with pytest.raises(WebserverError, match="no run r1"):
        wait_for_runs("http://127.0.0.1:1", ["r1"], timeout_s=60, poll_s=0)


def test_a_webserver_that_never_answers_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webserver_client, "run_statuses", answers(*(busy() for _ in range(3))))
    with pytest.raises(WebserverError, match="no answer"):
        wait_for_runs("http://127.0.0.1:1", ["r1"], timeout_s=0, poll_s=0)


def workspace(load_status: str, located: dict | None) -> dict:
    entry = {"name": "envfactory", "loadStatus": load_status, "locationOrLoadError": located}
    return {"workspaceOrError": {"__typename": "Workspace", "locationEntries": [entry]}}


def graphql_answers(*outcomes: object):
    """A stand-in for graphql that returns each answer in turn and records how often it was asked."""
    queue = list(outcomes)
    asked = []

    def graphql(url: str, query: str, variables: dict | None = None, timeout_s: float = 30) -> dict:
        asked.append(query)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return graphql, asked


def test_waiting_for_the_code_location_ends_when_it_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    graphql, asked = graphql_answers(
        busy(),  # the webserver is not answering yet
        workspace("LOADING", None),
        workspace("LOADED", {"__typename": "RepositoryLocation"}),
    )
    monkeypatch.setattr(webserver_client, "graphql", graphql)
    assert (
        webserver_client.wait_for_code_location("http://127.0.0.1:1", timeout_s=60, poll_s=0) == "envfactory"
    )
    assert len(asked) == 3


def test_a_location_that_failed_to_load_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    error = {"__typename": "PythonError", "message": "ModuleNotFoundError: no module named 'x'"}
    graphql, asked = graphql_answers(workspace("LOADED", error), workspace("LOADED", error))
    monkeypatch.setattr(webserver_client, "graphql", graphql)
    with pytest.raises(webserver_client.CodeLocationError, match="failed to load: ModuleNotFoundError"):
        webserver_client.wait_for_code_location("http://127.0.0.1:1", timeout_s=60, poll_s=0)
    assert len(asked) == 1


def test_a_location_still_loading_at_the_deadline_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    graphql, _ = graphql_answers(workspace("LOADING", None))
    monkeypatch.setattr(webserver_client, "graphql", graphql)
    with pytest.raises(TimeoutError, match="still loading"):
        webserver_client.wait_for_code_location("http://127.0.0.1:1", timeout_s=0, poll_s=0)


def test_a_launch_refused_while_the_location_loads_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    not_found = {"launchRun": {"__typename": "PipelineNotFoundError", "message": "no job envfactory_all"}}
    launched = {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "r1"}}}
    graphql, asked = graphql_answers(not_found, not_found, launched)
    monkeypatch.setattr(webserver_client, "graphql", graphql)
    monkeypatch.setattr(webserver_client.time, "sleep", lambda _: None)
    run_id = webserver_client.launch_partition_run(
        "http://127.0.0.1:1", "envfactory_all", "finance", location="l"
    )
    assert run_id == "r1" and len(asked) == 3


def test_a_job_still_missing_after_the_retry_window_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    not_found = {"launchRun": {"__typename": "PipelineNotFoundError", "message": "no job envfactory_all"}}
    graphql, _ = graphql_answers(not_found)
    monkeypatch.setattr(webserver_client, "graphql", graphql)
    with pytest.raises(WebserverError, match="PipelineNotFoundError"):
        webserver_client.launch_partition_run(
            "http://127.0.0.1:1", "envfactory_all", "finance", location="l", retry_s=0
        )
