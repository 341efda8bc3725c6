"""The code location on Kubernetes (deploy/kubernetes/values.yaml): `definitions.defs` with every
step a Kubernetes Job in the run's namespace, with the run's image (the `k8s` extra)."""

from __future__ import annotations

import dagster as dg

from envfactory_dagster.definitions import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    from dagster_k8s import k8s_job_executor

    return build_definitions(executor=k8s_job_executor)
