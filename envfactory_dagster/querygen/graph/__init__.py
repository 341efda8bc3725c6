"""The tool-dependency graph in parts: `model` (the graph and its lookups, loading from rows),
`nodes` (tools and parameters from environment specs and their source documents), `labels`
(user-provided and state-scoped inputs), `matching` (which outputs feed which inputs, with
evidence), `summary` (rows, metrics, Markdown) and `gold_flows` (recall and precision against
gold call sequences). `querygen.tool_graph` assembles them and is the public entry point."""
