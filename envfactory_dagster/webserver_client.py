"""Launch and follow partition runs through a Dagster webserver's GraphQL API (plain HTTP + JSON).

What `envfactory submit` uses to run domains on a cluster (deploy/): the webserver queues each
run, dagster-daemon launches it, and its steps run wherever the code location's executor sends
them. Runs submitted here are the same runs the UI shows.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

REPOSITORY = "__repository__"  # the name Dagster gives the repository of a `Definitions`
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

LOCATIONS = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
  }
}
"""
PARTITION_KEYS = """
query Keys($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { partitionKeysOrError { ... on PartitionKeys { partitionKeys } } }
    ... on PythonError { message }
  }
}
"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status jobName startTime endTime
      tags { key value }
      stepStats { stepKey status startTime endTime }
    }
    ... on PythonError { message }
  }
}
"""
# While waiting only the statuses are asked for, all runs in one query: `RUN`'s step stats read each
# run's event log, which costs the webserver and the database as much as a step's own writes.
RUN_STATUSES = """
query Statuses($runIds: [String]) {
  runsOrError(filter: {runIds: $runIds}) {
    __typename
    ... on Runs { results { runId status } }
    ... on PythonError { message }
  }
}
"""


class WebserverError(RuntimeError):
    """The webserver refused a request or answered with errors."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    partition: str | None
    seconds: float | None
    steps: int


def graphql(url: str, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 30) -> dict:
    """POST one GraphQL request to `<url>/graphql`; returns its `data`."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = json.loads(response.read())
    except OSError as error:
        raise WebserverError(f"no answer from the Dagster webserver at {url}: {error}") from error
    if payload.get("errors"):
        raise WebserverError(f"webserver {url} answered with errors: {payload['errors']}")
    return payload["data"]


class CodeLocationError(WebserverError):
    """The code location failed to load (an import error, bad definitions): waiting will not help."""


def code_location(url: str) -> str:
    """The name of the webserver's (first) code location, once it is loaded."""
    workspace = graphql(url, LOCATIONS)["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        raise WebserverError(f"the webserver at {url} has no workspace: {workspace.get('message')}")
    entries = workspace["locationEntries"]
    if not entries:
        raise WebserverError(f"the webserver at {url} has no code location")
    entry = entries[0]
    loaded = entry["locationOrLoadError"]
    if loaded and loaded["__typename"] == "PythonError":
        raise CodeLocationError(
            f"code location {entry['name']!r} on {url} failed to load: {loaded['message']}"
        )
    if entry["loadStatus"] != "LOADED" or not loaded:
        raise WebserverError(f"code location {entry['name']!r} on {url} is still loading")
    return entry["name"]


def wait_for_code_location(url: str, timeout_s: float, poll_s: float = 1.0) -> str:
    """Poll until the webserver answers and its code location is loaded; returns the location's name.

    A webserver answers `/server_info` before its code server has imported the definitions, and a
    run launched in between fails with PipelineNotFoundError. A location that failed to load raises
    at once with its error; past `timeout_s` a TimeoutError names the last state seen.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return code_location(url)
        except CodeLocationError:
            raise
        except WebserverError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"code location not loaded after {timeout_s:.0f} s: {error}") from error
        time.sleep(poll_s)


def partition_keys(url: str, job: str, location: str | None = None) -> list[str]:
    """The partitions of `job` as the deployment's code location defines them (its domain folders)."""
    selector = {"repositoryLocationName": location or code_location(url), "repositoryName": REPOSITORY,
                "pipelineName": job}  # fmt: skip
    found = graphql(url, PARTITION_KEYS, {"selector": selector})["pipelineOrError"]
    if found["__typename"] != "Pipeline":
        raise WebserverError(f"job {job!r} not found on {url}: {found}")
    return list(found["partitionKeysOrError"]["partitionKeys"])


def launch_partition_run(
    url: str,
    job: str,
    partition: str,
    asset_selection: list[str] | None = None,
    location: str | None = None,
    retry_s: float = 120,
) -> str:
    """Queue one run of `job` for a partition (optionally only some assets); returns its run id.

    While the code location (re)loads the job is not found: that answer is retried for `retry_s`.
    """
    selector: dict[str, Any] = {
        "repositoryLocationName": location or code_location(url),
        "repositoryName": REPOSITORY,
        "jobName": job,
    }
    if asset_selection:
        selector["assetSelection"] = [{"path": [name]} for name in asset_selection]
    params = {
        "selector": selector,
        "executionMetadata": {
            "tags": [
                {"key": "dagster/partition", "value": partition},
                {"key": "envfactory/trigger", "value": "submit"},
            ]
        },
    }
    deadline = time.monotonic() + retry_s
    while True:
        launched = graphql(url, LAUNCH_RUN, {"params": params})["launchRun"]
        if launched["__typename"] != "PipelineNotFoundError" or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    if launched["__typename"] != "LaunchRunSuccess":
        raise WebserverError(f"launching {job} for partition {partition!r} failed: {launched}")
    return launched["run"]["runId"]


def run_info(url: str, run_id: str) -> RunInfo:
    """Status, partition, duration and step count of a run, as the webserver reports them."""
    run = graphql(url, RUN, {"runId": run_id})["runOrError"]
    if run["__typename"] != "Run":
        raise WebserverError(f"run {run_id}: {run}")
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    seconds = run["endTime"] - run["startTime"] if run["startTime"] and run["endTime"] else None
    return RunInfo(run_id, run["status"], tags.get("dagster/partition"), seconds, len(run["stepStats"]))


def run_statuses(url: str, run_ids: list[str]) -> dict[str, str]:
    """The status of each run (one query for all of them)."""
    runs = graphql(url, RUN_STATUSES, {"runIds": run_ids})["runsOrError"]
    if runs["__typename"] != "Runs":
        raise WebserverError(f"runs {run_ids}: {runs}")
    statuses = {run["runId"]: run["status"] for run in runs["results"]}
    if missing := [run_id for run_id in run_ids if run_id not in statuses]:
        raise WebserverError(f"the webserver knows no run {', '.join(missing)}")
    return statuses


def wait_for_runs(url: str, run_ids: list[str], timeout_s: float, poll_s: float = 2.0) -> list[RunInfo]:
    """Poll until every run has finished (SUCCESS, FAILURE or CANCELED), then describe each one;
    raises past `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pending: dict[str, str] = dict.fromkeys(run_ids, "unknown")
    while True:
        try:
            statuses = run_statuses(url, run_ids)
        except WebserverError as error:
            # A webserver busy beside the runs may miss a poll (its 30 s timeout): ask again later.
            # Errors in an answer are not transient.
            if not isinstance(error.__cause__, OSError) or time.monotonic() > deadline:
                raise
        else:
            pending = {
                run_id: status for run_id, status in statuses.items() if status not in TERMINAL_STATUSES
            }
            if not pending:
                return [run_info(url, run_id) for run_id in run_ids]
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs not finished after {timeout_s:.0f} s: {pending}")
        time.sleep(poll_s)
