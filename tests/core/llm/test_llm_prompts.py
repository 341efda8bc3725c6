"""The prompt module: every stage's prompt exists, names known roles, and renders completely."""

from __future__ import annotations

import pytest

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.llm.config import ROLES
from envfactory_dagster.llm.prompts import PROMPTS, extract_code_block, get_prompt

REQUIRED = {
    "env_proposal": "proposer",
    "env_tool_bodies": "coder",
    "env_revise_bodies": "reviser",
    "user_query": "query_writer",
    "persona": "query_writer",
    "refine_query": "refiner",
    "solve": "solver",
    "judge": "judge",
    "user_sim": "user_simulator",
}


@pytest.mark.parametrize(("name", "role"), sorted(REQUIRED.items()))
def test_prompt_exists_for_its_role_and_renders_every_placeholder(name: str, role: str) -> None:
    template = get_prompt(name)
    assert role in template.roles and set(template.roles) <= set(ROLES)
    assert template.version
    messages = template.render({key: f"<{key}>" for key in template.placeholders()})
    assert [m["role"] for m in messages] == ["system", "user"]
    text = messages[0]["content"] + messages[1]["content"]
    assert "$" not in text.replace("$$", "")
    assert all(f"<{key}>" in text for key in template.placeholders())


def test_all_prompts_use_known_roles() -> None:
    assert all(set(p.roles) <= set(ROLES) for p in PROMPTS.values())


def test_missing_variable_and_unknown_prompt_are_named() -> None:
    with pytest.raises(ValueError, match=r"env_tool_bodies.*missing variables \['skeleton', 'tools'\]"):
        get_prompt("env_tool_bodies").render({})
    with pytest.raises(KeyError, match="no prompt named 'poem'"):
        get_prompt("poem")


def test_structured_values_render_as_json() -> None:
    spec = EnvSpec(class_name="Shop", title="Shop", description="d", domain="commerce", entities=[], tools=[])
    user = get_prompt("env_tool_bodies").render({"skeleton": "", "tools": spec})[1]["content"]
    assert '"class_name": "Shop"' in user


def test_extract_code_block() -> None:
    assert extract_code_block("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert extract_code_block("x = 1") == "x = 1\n"


def test_every_prompt_and_role_is_used_by_a_stage() -> None:
    from pathlib import Path

    import envfactory_dagster

    package = Path(envfactory_dagster.__file__).parent
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in package.rglob("*.py")
        if path.relative_to(package).as_posix() not in ("llm/prompts.py", "llm/config.py", "llm/testing.py")
    )
    unused_prompts = [name for name in PROMPTS if f'"{name}"' not in sources]
    unused_roles = [role for role in ROLES if f'"{role}"' not in sources]
    assert (unused_prompts, unused_roles) == ([], [])
