"""Serving verified environments: an MCP server, a Gymnasium-style env, trainer tool adapters.

Modules: `mcp_server` (MCP over stdio / streamable HTTP), `gym_env` (`ToolUseEnv`),
`trainer_tools` (verl `BaseTool`-shaped and TRL `environment_factory`-shaped adapters),
`rollout` (the one rollout core they share), `registry` (read environments and tasks from
`$ENVFACTORY_HOME`). Entry point: `python -m envfactory_dagster.serve mcp --env-id ID`.
"""
