"""Storage: Parquet per asset partition (atomic replace) and a DuckDB catalog of views."""
