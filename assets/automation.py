"""Schedule and sensors: daily runs of every domain; declarative re-runs of changed domains."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from assets.catalog import RESOURCE_FILES
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
    """Observes `resource_files`: a new data version for each domain whose files were added,
    removed or changed, which `AutomationCondition.eager()` on the ingest assets (and then every
    asset downstream) turns into runs of just those domains (with `envfactory_automation` on).

    The cursor holds the last seen fingerprint per domain; the first tick records the current
    state without reporting anything. A new domain folder needs a code-location reload to become
    a partition; the sensor says so instead of reporting a partition that does not exist.
    """

    @dg.sensor(name="envfactory_resource_files", minimum_interval_seconds=60)
    def envfactory_resource_files(context: dg.SensorEvaluationContext):
        current = domain_fingerprints(resources_dir)
        if context.cursor is None:
            context.update_cursor(json.dumps(current))
            return dg.SkipReason(f"recorded {len(current)} domain folders; watching for changes")
        previous = json.loads(context.cursor)
        known = set(job.partitions_def.get_partition_keys()) if job.partitions_def else set(current)
        observations = []
        for domain, fingerprint in sorted(current.items()):
            if previous.get(domain) == fingerprint:
                continue
            if domain not in known:
                context.log.warning(
                    f"new domain folder {domain!r}: reload the code location to add its partition"
                )
                continue
            observations.append(
                dg.AssetObservation(
                    asset_key=RESOURCE_FILES, partition=domain, tags={DATA_VERSION_TAG: fingerprint}
                )
            )
        context.update_cursor(json.dumps(current))
        if not observations:
            return dg.SkipReason("no resource file changed")
        return dg.SensorResult(asset_events=observations)

    return envfactory_resource_files


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions (stopped by default, like Dagster's own)."""
    return dg.AutomationConditionSensorDefinition(
        "envfactory_automation",
        target=dg.AssetSelection.all(),
        description="Re-materializes, per domain, what depends on changed resource files "
        "(AutomationCondition.eager on every asset). Turn it on with envfactory_resource_files.",
    )
