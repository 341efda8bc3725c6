"""The code location of a cluster deployment (deploy/workspace.yaml): `definitions.defs` with every
step a Celery task on the workers listening to the broker (the `cluster` extra; deploy/README.md)."""

from __future__ import annotations

import dagster as dg

from envfactory_dagster.definitions import build_definitions

CELERY_BROKER_ENV_VAR = "ENVFACTORY_CELERY_BROKER"  # e.g. redis://127.0.0.1:6379/0
CELERY_BACKEND_ENV_VAR = "ENVFACTORY_CELERY_BACKEND"  # e.g. redis://127.0.0.1:6379/1


def celery_step_executor() -> dg.ExecutorDefinition:
    """Each step as a Celery task; broker and result backend from the environment."""
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {"broker": {"env": CELERY_BROKER_ENV_VAR}, "backend": {"env": CELERY_BACKEND_ENV_VAR}},
        name="celery",
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(executor=celery_step_executor())
