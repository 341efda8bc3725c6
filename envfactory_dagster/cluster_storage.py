"""The Postgres storage of a cluster's Dagster instance (deploy/dagster.yaml), with pooled connections.

dagster-postgres opens a new database connection for every query, except in the webserver
(SQLAlchemy's NullPool: an instance that is dropped leaves no connection behind). In a cluster that
is a TCP connection, a Postgres backend process and a SCRAM password exchange for every event a step
writes, every pool-slot claim of a run's orchestrator and every queue check of the daemon: about
8 ms of CPU each on this machine (2.9 ms in the client, the rest in Postgres; a SCRAM-free
connection costs half), on the same cores as the steps. These classes are dagster-postgres's storages
holding their connections the way the webserver's do (`optimize_for_webserver`): one kept open per
storage and process, a few more while it is busy, each replaced after an hour. Every process of the
cluster builds its instance from the same dagster.yaml, so the daemon, the run orchestrators, the
Celery workers and the webserver all pool.

Statements get no timeout (0): a step's writes must not be cut off the way the webserver cuts long
reads (the webserver sets its own timeout over this when it starts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_S = 3600  # a kept connection older than this is replaced
POOL_MAX_OVERFLOW = 4  # connections opened beyond the kept one while it is in use (daemon threads)


def _keyword_args(inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]) -> dict:
    """What dagster-postgres's own `from_config_value` passes to its storages."""
    return {
        "inst_data": inst_data,
        "postgres_url": pg_url_from_config(config_value),
        "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config_value),
    }


class _Pooled:
    """Built as its dagster-postgres base class is, then holding its connections in a pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(
            statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=POOL_MAX_OVERFLOW
        )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Any:
        # dagster-postgres's own classmethod names its class: it would build the unpooled one
        return cls(**_keyword_args(inst_data, config_value))


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """Runs, daemon heartbeats and key-value cursors."""


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    """Events, asset records and pool slots."""


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """Schedule, sensor and backfill state."""
