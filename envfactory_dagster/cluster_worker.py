"""The Celery app of a cluster's workers (`dagster-celery worker start -A envfactory_dagster.cluster_worker`):
dagster-celery's app and tasks, with one change to the step task: each worker process keeps one
Dagster instance for every step it runs (its storages pool their connections:
envfactory_dagster/cluster_storage.py).

Why: dagster-celery's step task opens a new instance per step, and dagster-postgres opens a new
connection per query outside the webserver (SQLAlchemy's NullPool): every event a step writes is a
TCP connection, a Postgres backend started for it, and a SCRAM password exchange. On a 2-core
machine, py-spy on a worker running the bundled catalog found 13% of its step time in `psycopg2.connect`
and 3% in opening instances (benchmarks/scale_out.py measures the effect). Steps still run one at a
time per process (the worker's `--concurrency` processes each hold their own instance and pool),
and what a step does is unchanged: the task body below is dagster-celery's (0.29) `execute_plan`.
"""

from __future__ import annotations

from dagster import DagsterInstance
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import EngineEventData
from dagster._core.execution.api import create_execution_plan, execute_plan_iterator
from dagster._core.instance.ref import InstanceRef
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import serialize_value, unpack_value
from dagster_celery.config import TASK_EXECUTE_PLAN_NAME
from dagster_celery.core_execution_loop import DELEGATE_MARKER
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

app = make_app()
_instances: dict[str, DagsterInstance] = {}  # by serialized InstanceRef (it holds dicts: not hashable)


def worker_instance(ref: InstanceRef) -> DagsterInstance:
    """The instance of `ref` for every step this process runs (and with it, its kept connections)."""
    key = serialize_value(ref)
    if key not in _instances:
        _instances[key] = DagsterInstance.from_ref(ref)
    return _instances[key]


@app.task(bind=True, name=TASK_EXECUTE_PLAN_NAME)
def execute_plan(self, execute_step_args_packed: dict, executable_dict: dict) -> list[str]:
    """Run the steps of one Celery task; returns their serialized events (as dagster-celery's task)."""
    execute_step_args = unpack_value(execute_step_args_packed, as_type=ExecuteStepArgs)
    instance = worker_instance(execute_step_args.instance_ref)
    recon_job = ReconstructableJob.from_dict(executable_dict)
    dagster_run = instance.get_run_by_id(execute_step_args.run_id)
    if dagster_run is None:
        raise ValueError(f"run {execute_step_args.run_id} is not in this cluster's Dagster instance")
    step_keys = ", ".join(execute_step_args.step_keys_to_execute or [])
    execution_plan = create_execution_plan(
        recon_job,
        dagster_run.run_config,
        step_keys_to_execute=execute_step_args.step_keys_to_execute,
        known_state=execute_step_args.known_state,
    )
    engine_event = instance.report_engine_event(
        f"Executing steps {step_keys} in celery worker",
        dagster_run,
        EngineEventData(
            {"step_keys": step_keys, "Celery worker": self.request.hostname}, marker_end=DELEGATE_MARKER
        ),
        CeleryExecutor,
        step_key=execution_plan.step_handle_for_single_step_plans().to_key(),
    )
    events = [engine_event]
    events.extend(
        execute_plan_iterator(
            execution_plan=execution_plan,
            job=recon_job,
            dagster_run=dagster_run,
            instance=instance,
            retry_mode=execute_step_args.retry_mode,
            run_config=dagster_run.run_config,
        )
    )
    return [serialize_value(event) for event in events]


execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
