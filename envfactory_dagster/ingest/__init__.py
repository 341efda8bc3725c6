"""Ingest: authentic resource files (OpenAPI 3, Swagger 2, MCP tool listings, Markdown docs) -> specs.

`parse_resource_file` parses one file into a `NormalizedSpec`; `ingest_domain` turns a domain
folder into `authentic_resources` rows and `resource_errors` rows (authentic_resources.py).
"""
