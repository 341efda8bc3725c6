"""Load verified environments for later stages and users.

A registry row (`verified_envs`) carries the module source and its sha256; this module turns it
into the environment class (one module object per code hash per process, shared by every
instance) and makes fresh instances that share nothing mutable.

Registry columns used here: `env_id` (version id), `class_name`, `source`, `code_sha256`,
`spec_json` (EnvSpec, which names the environment's world), `seed_state_json` (the verified
default initial state, the world's).
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.runtime.contract import Environment

_CLASSES: dict[str, type[Environment]] = {}


def load_environment_class(source: str, code_sha256: str, class_name: str) -> type[Environment]:
    """The environment class defined by `source` (verified code only), cached by its hash."""
    cached = _CLASSES.get(code_sha256)
    if cached is not None:
        return cached
    if sha256_hex(source) != code_sha256:
        raise ValueError(f"environment {class_name}: source does not match its sha256 {code_sha256[:12]}")
    module_name = f"envfactory_env_{code_sha256[:16]}"
    module = types.ModuleType(module_name)
    module.__file__ = f"<environment {class_name} {code_sha256[:12]}>"
    sys.modules[module_name] = module  # pydantic resolves forward references through sys.modules
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    env_class = getattr(module, class_name, None)
    if not (isinstance(env_class, type) and issubclass(env_class, Environment)):
        raise ValueError(f"environment module {code_sha256[:12]} defines no Environment class {class_name!r}")
    _CLASSES[code_sha256] = env_class
    return env_class


@dataclass(frozen=True)
class VerifiedEnvironment:
    """One registry entry: make instances, read its spec and default state."""

    env_id: str
    class_name: str
    source: str
    code_sha256: str
    spec_json: str
    seed_state_json: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> VerifiedEnvironment:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @cached_property
    def env_class(self) -> type[Environment]:
        return load_environment_class(self.source, self.code_sha256, self.class_name)

    @cached_property
    def spec(self) -> EnvSpec:
        return EnvSpec.model_validate_json(self.spec_json)

    @cached_property
    def world_id(self) -> str:
        """The world whose state this environment uses: environments of one service share it; an
        environment with no declared world owns its state alone (its world is itself)."""
        return self.spec.world_id or self.env_id

    @cached_property
    def seed_state(self) -> dict[str, Any]:
        return json.loads(self.seed_state_json)

    def instance(self, state: dict[str, Any] | None = None) -> Environment:
        """A fresh instance with `state` (validated) or the verified default state."""
        return self.env_class(self.seed_state if state is None else state)
