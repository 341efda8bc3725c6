"""Schedule and sensor: daily materialization of every domain; re-runs of changed domains."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from envfactory_dagster.resource_watch import domain_fingerprints


def build_daily_schedule(job: dg.UnresolvedAssetJobDefinition, partitions: dg.StaticPartitionsDefinition):
    """One run per domain partition every day at 03:00 UTC.

    (`build_schedule_from_partitioned_job` does not work with static partitions: see STACK-NOTES.)
    """

    @dg.schedule(job=job, cron_schedule="0 3 * * *", execution_timezone="UTC", name="envfactory_daily")
    def envfactory_daily(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.strftime("%Y-%m-%d")
        for domain in partitions.get_partition_keys():
            yield dg.RunRequest(
                run_key=f"{day}:{domain}", partition_key=domain, tags={"envfactory/trigger": "daily"}
            )

    return envfactory_daily


def build_resource_file_sensor(job: dg.UnresolvedAssetJobDefinition, resources_dir: Path):
    """Requests a run of just the domains whose files were added, removed or changed.

    The cursor holds the last seen fingerprint per domain; the first tick records the current
    state without launching anything. A new domain folder needs a code-location reload to become
    a partition; the sensor says so instead of launching a run that cannot exist.
    """

    @dg.sensor(job=job, name="envfactory_resource_files", minimum_interval_seconds=60)
    def envfactory_resource_files(context: dg.SensorEvaluationContext):
        current = domain_fingerprints(resources_dir)
        if context.cursor is None:
            context.update_cursor(json.dumps(current))
            return dg.SkipReason(f"recorded {len(current)} domain folders; watching for changes")
        previous = json.loads(context.cursor)
        known = set(job.partitions_def.get_partition_keys()) if job.partitions_def else set(current)
        requests = []
        for domain, fingerprint in sorted(current.items()):
            if previous.get(domain) == fingerprint:
                continue
            if domain not in known:
                context.log.warning(
                    f"new domain folder {domain!r}: reload the code location to add its partition"
                )
                continue
            requests.append(dg.RunRequest(run_key=f"{domain}:{fingerprint}", partition_key=domain))
        context.update_cursor(json.dumps(current))
        return requests or dg.SkipReason("no resource file changed")

    return envfactory_resource_files
