"""Dagster resources: thin wrappers around the core's settings, storage and gateways."""
