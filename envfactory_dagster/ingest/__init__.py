"""Ingest: authentic resource files (OpenAPI 3, Swagger 2, MCP tool listings, Markdown docs) -> normalized specs."""
