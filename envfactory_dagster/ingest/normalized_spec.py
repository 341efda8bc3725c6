"""The normalized spec: one shape for every kind of authentic resource.

Parsers (OpenAPI 3.x, Swagger 2.0, MCP tool listings, Markdown API docs, function-calling
catalogs) all produce a
`NormalizedSpec`; every later stage reads only this shape, never the raw file.

Schemas inside are plain JSON Schema dicts with every `$ref` resolved. Two annotations are
added by the resolver so that later stages keep what a `$ref` told them:
- `"x-ref-name": "Order"` on a schema that was reached through `#/.../schemas/Order`
  (or `#/definitions/Order`); it names the entity a response or property refers to;
- `{"x-circular-ref": "Node"}` replaces the inner occurrence of a circular reference.
Vendor extensions (`x-*`) of the source are kept as they are.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ResourceKind = Literal["openapi3", "swagger2", "mcp", "markdown", "functions"]
ParamLocation = Literal["path", "query", "header", "cookie", "argument"]


class NormalizedParam(BaseModel):
    """One named input of an operation (path/query/header parameter or MCP argument)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    location: ParamLocation
    required: bool = False
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    description: str = ""


class NormalizedLink(BaseModel):
    """An OpenAPI response link: a later operation whose parameters this response fills."""

    model_config = ConfigDict(extra="forbid")

    operation_id: str
    parameters: dict[str, str] = Field(default_factory=dict)  # parameter -> runtime expression


class NormalizedOperation(BaseModel):
    """One callable operation: an OpenAPI operation, an MCP tool, a catalog function, or a
    documented endpoint."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    operation_id: str  # unique within the resource (synthesized from method+path when absent)
    method: str | None = None  # lowercase HTTP verb; None for MCP tools and catalog functions
    path: str | None = None  # URL template; None for MCP tools and catalog functions
    summary: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    parameters: list[NormalizedParam] = Field(default_factory=list)
    request_body: dict[str, Any] | None = None  # JSON Schema of the JSON body (MCP: None)
    response: dict[str, Any] | None = None  # JSON Schema of the success (2xx) response
    links: list[NormalizedLink] = Field(default_factory=list)  # OpenAPI 3 links of the 2xx responses
    extensions: dict[str, Any] = Field(default_factory=dict)  # the operation's x-* keys


class NormalizedSpec(BaseModel):
    """A parsed authentic resource."""

    model_config = ConfigDict(extra="forbid")

    kind: ResourceKind
    title: str
    version: str = ""
    description: str = ""
    license: str | None = None  # from the document (info.license) when it says one
    tags: dict[str, str] = Field(default_factory=dict)  # tag name -> description
    operations: list[NormalizedOperation]
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)  # named component schemas
    extensions: dict[str, Any] = Field(default_factory=dict)  # the document's top-level x-* keys
    # API hosts the document states (OpenAPI 3 `servers`, Swagger 2 `host`), lowercase: two
    # documents that state a common host describe one service
    hosts: list[str] = Field(default_factory=list)
