"""Every prompt of the pipeline, as versioned templates in one module.

A template has `$name` placeholders (string.Template, so JSON braces need no escaping); values
that are not strings are rendered as indented JSON. Bump `version` whenever the wording changes:
the version is part of the response-cache key and is recorded on every row the answer influenced.
Structured prompts do not spell out their JSON shape: the gateway appends the JSON Schema of the
stage's Pydantic output model, so the schema has one source of truth.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from string import Template
from typing import Any


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    system: str
    user: str
    roles: tuple[str, ...]  # roles allowed to run this prompt

    def placeholders(self) -> set[str]:
        names: set[str] = set()
        for text in (self.system, self.user):
            for match in Template.pattern.finditer(text):
                name = match.group("named") or match.group("braced")
                if name:
                    names.add(name)
        return names

    def render(self, variables: dict[str, Any]) -> list[dict[str, str]]:
        """Chat messages (system, user) with the variables filled in; a missing one is a ValueError."""
        missing = sorted(self.placeholders() - set(variables))
        if missing:
            raise ValueError(f"prompt {self.name!r} v{self.version}: missing variables {missing}")
        values = {key: render_value(value) for key, value in variables.items()}
        return [
            {"role": "system", "content": Template(self.system).substitute(values)},
            {"role": "user", "content": Template(self.user).substitute(values)},
        ]


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


_FENCED_BLOCK = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)\n```", re.DOTALL)


def extract_code_block(text: str) -> str:
    """The body of the first fenced code block, or the whole text stripped when there is none."""
    match = _FENCED_BLOCK.search(text)
    return (match.group(1) if match else text).strip() + "\n"


# The rules of a tool body (runtime/contract.py), for the coder and the reviser. The module around the
# bodies is generated from the spec (envgen/code_skeleton.py), so the model never retypes a schema.
_TOOL_BODY_RULES = """\
Rules for a tool body:
- Read rows with `self.table(collection)` (a dict key -> row dict) or `self.require(collection, key,
  "Entity")` (the row, or a not_found ToolError naming the entity). Rows are plain dicts.
- Write with `self.put(collection, key, {**row, "field": value})`, which stores the new dict and returns
  a copy for the output; never change a row in place. Delete with `del self.table(collection)[key]`.
  A new key is the entity's `new_key` expression (it calls `self.next_id(collection, ...)`); "now" is
  `self.state["now"]`.
- Return a dict whose keys are the tool's output keys (rows as dicts, lists of rows as lists).
- A refused call (unknown id, a referenced row missing, a failed precondition, a forbidden transition)
  raises `ToolError(code, message)` before anything is written, with a message naming the entity and
  value; codes: not_found, invalid_state, conflict, invalid_arguments. Never raise anything else.
- Only the names already imported by the module (Any, Literal, ToolError, the entity models); no
  imports, no clock, no randomness, no I/O, no print, no globals.

Example answer for two tools:

```python
def get_order(self, order_id: str) -> dict[str, Any]:
    return {"order": dict(self.require("orders", order_id, "Order"))}

def cancel_order(self, order_id: str) -> dict[str, Any]:
    row = self.require("orders", order_id, "Order")
    if row["status"] not in ("pending", "paid"):
        raise ToolError("invalid_state", f"Order {order_id!r} is {row['status']}, not pending or paid")
    return {"order": self.put("orders", order_id, {**row, "status": "cancelled"})}
```"""

_BODIES_ANSWER = (
    "Reply with one ```python code block holding, for each tool listed, its `def` line exactly as given "
    "in `signature` followed by its body: no decorator, no class, no imports, no other functions."
)

_NO_TOOL_NAMES = (
    "Write as the user would: first person, natural, concrete. Never name a tool, a function, a "
    "parameter or a field, and never use snake_case identifiers."
)

PROMPTS: dict[str, PromptTemplate] = {
    p.name: p
    for p in (
        PromptTemplate(
            name="env_proposal",
            version="1",
            roles=("proposer",),
            system=(
                "You design simulated, stateful tool-use environments for training agents. An environment "
                "is a small database (entities with keys, fields and foreign keys) plus 3 to 8 tools that "
                "read and change it; it never calls a real API. Base every environment on the authentic "
                "API descriptions you are given: the entities, operations and business rules must be ones "
                "those descriptions document, and every proposal cites the ids of the resources it uses. "
                "Prefer environments that are practical (real users would need them), distinct from the "
                "existing ones, well documented by the sources, and simple enough to implement exactly. "
                "Exclude AI/LLM APIs. Include at least one write tool with a precondition or a state "
                "transition (e.g. an order moves from pending to paid) so the environment has behaviour, "
                "not only lookups."
            ),
            user=(
                "Domain: $domain\n\n"
                "Existing environments in this domain (do not duplicate them):\n$existing_envs\n\n"
                "Authentic resources (id, title, excerpt):\n$resources\n\n"
                "Propose up to $max_proposals environments."
            ),
        ),
        PromptTemplate(
            name="env_tool_bodies",
            version="1",
            roles=("coder",),
            system=(
                "You implement the tools of a simulated, stateful tool environment in Python. The module "
                "skeleton (imports, entity models, State, each tool's decorator and signature) is generated "
                "from the specification and is fixed; you write the bodies of the tools listed, following "
                "each tool's action, parameters, transition, preconditions and rules exactly. The code is "
                "imported, tested and replayed automatically: it must be deterministic and exact.\n\n"
                + _TOOL_BODY_RULES
                + "\n\n"
                + _BODIES_ANSWER
            ),
            user="Module skeleton:\n```python\n$skeleton\n```\n\nTools to write now (JSON):\n$tools",
        ),
        PromptTemplate(
            name="env_revise_bodies",
            version="1",
            roles=("reviser",),
            system=(
                "You fix tools of a simulated tool environment that failed automatic verification. The "
                "report lists what was executed and what went wrong (crashes instead of ToolError, wrong "
                "results, state not changed as declared, rows changed in place). Fix the causes, not the "
                "symptoms, and never special-case a test's values. The module around the tools is "
                "generated from the specification and is fixed; you rewrite only the bodies of the tools "
                "listed.\n\n" + _TOOL_BODY_RULES + "\n\n" + _BODIES_ANSWER
            ),
            user=(
                "Current module (attempt $attempt):\n```python\n$code\n```\n\n"
                "Verification report (JSON):\n$report\n\nTools to rewrite now (JSON):\n$tools"
            ),
        ),
        PromptTemplate(
            name="persona",
            version="1",
            roles=("query_writer",),
            system=(
                "You invent the person behind a multi-step task. Given the tools a task will use, in order, "
                "write a persona (who they are, in one or two sentences) and a scenario (the situation "
                "that makes them need all these steps, in two to four sentences), consistent with the "
                "environments' data. " + _NO_TOOL_NAMES
            ),
            user="Domain: $domain\n\nEnvironments:\n$environments\n\nThe task's steps, in order:\n$chain",
        ),
        PromptTemplate(
            name="user_query",
            version="1",
            roles=("query_writer",),
            system=(
                "You write the user's message for one turn of a conversation with an assistant that has "
                "tools. The message must ask for exactly what the turn's calls do, and state every value "
                "the user would know and type (names, dates, amounts, text) so the calls can be made; do "
                "not state values the assistant gets from earlier tool results or from the conversation "
                "(ids, computed totals). Express the relation between sub-goals (first ... then ..., "
                "only if ...) naturally. " + _NO_TOOL_NAMES
            ),
            user=(
                "Persona: $persona\nScenario: $scenario\n\nConversation so far:\n$history\n\n"
                "This turn's calls (tool, arguments, result):\n$calls\n\n"
                "Values the user provides in this turn:\n$user_values"
            ),
        ),
        PromptTemplate(
            name="turn_answer",
            version="1",
            roles=("refiner",),
            system=(
                "You write the assistant's closing message for one turn of a conversation in which it "
                "used tools. Report to the user, briefly and concretely, what was found or done, using "
                "only the tool outputs and state changes given: what was created, changed or removed "
                "(with its name or id), and what a look-up returned. Mention every row that was "
                "created, changed or removed. Never invent values or identifiers, never name a tool, "
                "a function or a parameter, and do not ask a question unless the outputs leave the "
                "request unresolved."
            ),
            user="User's request: $request\n\nCalls made, with their outputs and state changes:\n$calls",
        ),
        PromptTemplate(
            name="refine_query",
            version="1",
            roles=("refiner",),
            system=(
                "You rewrite a user's message to sound like a real person: implicit where people are "
                "implicit, but still solvable. You may (1) replace an identifier by a reference the "
                'assistant can resolve ("the order I placed this morning" instead of its id), (2) drop '
                'values the assistant can deduce, (3) compress steps into the goal ("cancel my most '
                'recent order" instead of "look up my orders, then cancel the newest"), (4) merge '
                "sub-goals. You may hide only the values listed as hideable, each only through the "
                "grounding given for it, and you must keep every other value. Never invent facts, tools "
                "or fields. For each hidden value, say which grounding you used. " + _NO_TOOL_NAMES
            ),
            user=(
                "Original message: $query\n\nConversation so far:\n$history\n\n"
                "Calls the message must lead to:\n$calls\n\n"
                "Hideable values and how each can be recovered:\n$hideable\n\n"
                "Relevant database rows:\n$state_excerpt"
            ),
        ),
        PromptTemplate(
            name="solve",
            version="1",
            roles=("solver",),
            system=(
                "You are an assistant that completes the user's request with the tools listed. Decide the "
                "next step: either tool calls (name and JSON arguments matching the tool's input schema; "
                "several only if they are independent) or, when the request is done or cannot be done, "
                "a final answer to the user. Use values from the conversation and from earlier tool "
                "results; never invent identifiers; if a call was refused, read the error and adapt."
            ),
            user="Tools:\n$tools\n\nConversation so far (messages and tool results):\n$conversation",
        ),
        PromptTemplate(
            name="judge",
            version="1",
            roles=("judge",),
            system=(
                "You compare candidate solutions of the same multi-turn tool-use task. Rank by: correct "
                "(the user's goal is reached, the final state is right), then efficient (no unnecessary "
                "calls), autonomous (does not ask for what it can look up), uses context (reuses earlier "
                "results), appropriate (no unrequested writes), clear (the final answers). Judge only "
                "from the transcripts and the tool results in them. Give a short reason per candidate."
            ),
            user="Task (user messages):\n$task\n\nCandidates (index, transcript):\n$candidates",
        ),
        PromptTemplate(
            name="conversation_end",
            version="1",
            roles=("judge",),
            system=(
                "You decide whether a conversation between a user and an assistant with tools is over. "
                "It is over when the user's goal is reached (every change the user asked for was made "
                "and confirmed by the tool results, every question answered) or when the assistant "
                "cannot reach it; it is not over while the assistant still needs something from the "
                "user or has steps left to take. Judge only from the messages and tool results shown."
            ),
            user="The user's goal: $goal\n\nConversation so far:\n$conversation",
        ),
        PromptTemplate(
            name="graph_links",
            version="1",
            roles=("linker",),
            system=(
                "You find the data flow between the tools of one API. Given one tool's inputs and the "
                "outputs of the API's other tools, list every (output, input) pair where a caller would "
                "take the output's value and pass it as the input: an id of the thing the input names, "
                "the name or code it asks for, a value of the kind it takes. Use only the ids given; "
                "leave out pairs already listed as known, and pairs that merely look alike. An empty "
                "list is a fine answer."
            ),
            user=(
                "Consumer tool: $tool\n\nIts inputs (id, name, type, description):\n$inputs\n\n"
                "Outputs of the other tools (id, tool, name, type, description):\n$outputs\n\n"
                "Pairs already known (output id -> input id):\n$known"
            ),
        ),
        PromptTemplate(
            name="user_sim",
            version="1",
            roles=("user_simulator",),
            system=(
                "You play the user in a conversation with an assistant that has tools. Stay in the "
                "persona; pursue only the goal given; reveal a piece of information only when the "
                "assistant needs it and asks, or when it is part of your opening request; never mention "
                "tools or internal identifiers you would not know. When the goal is reached, or the "
                "assistant cannot reach it, end the conversation by setting `done` to true. " + _NO_TOOL_NAMES
            ),
            user=(
                "Persona: $persona\n\nYour goal: $goal\n\nInformation you know:\n$known_values\n\n"
                "Conversation so far:\n$conversation"
            ),
        ),
    )
}


def get_prompt(name: str) -> PromptTemplate:
    """The template named `name`; a KeyError lists the known names."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise KeyError(f"no prompt named {name!r}; known prompts: {sorted(PROMPTS)}") from None
