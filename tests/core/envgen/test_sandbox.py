"""The sandbox against the hostile-code corpus: every module is refused or killed, the batch goes on.

The corpus (tests/data/hostile_code/) is one small notes environment per attack plus a benign
control. Each attack is run twice: with the static screen (the pipeline's setting) and with the
screen switched off, which proves the runtime layer (limits, audit hook, no network) stops it alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envfactory_dagster.envgen.code_screen import screen_source
from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.envgen.sandbox import SandboxLimits, make_audit_hook
from envfactory_dagster.envgen.verification import VerificationReport, verify_batch

CORPUS = Path(__file__).parents[2] / "data" / "hostile_code"
ATTACKS = sorted(p.stem for p in CORPUS.glob("*.py") if p.stem != "benign_notes")
MARKERS = [
    Path("/tmp/envfactory_hostile_os_system_marker"),
    Path("/tmp/envfactory_hostile_ctypes_marker"),
    Path("/tmp/envfactory_hostile_hidden_marker"),
    Path("/etc/envfactory_hostile_marker"),
]
# wall time well above the CPU limit: on a loaded machine a CPU-bound attack must hit its CPU limit first
FAST_LIMITS = SandboxLimits(cpu_seconds=1, memory_mb=1024, wall_seconds=8.0)

NOTES_SPEC = EnvSpec(
    class_name="Notes",
    title="Notes",
    description="Read notes.",
    domain="office",
    entities=[
        EntitySpec(
            name="Note",
            collection="notes",
            fields=[FieldSpec(name="id", type="string"), FieldSpec(name="text", type="string")],
        )
    ],
    tools=[
        ToolSpec(
            name="get_note",
            description="Get one note by its id.",
            kind="read",
            action="get",
            entity="Note",
            input_schema={
                "type": "object",
                "properties": {"note_id": {"type": "string"}},
                "required": ["note_id"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {"note": {"type": "object"}},
                "required": ["note"],
            },
            param_fields={"note_id": "id"},
        )
    ],
)
NOTES_SEED = {"notes": {"n1": {"id": "n1", "text": "hello"}, "n2": {"id": "n2", "text": "world"}}}


def _source(name: str) -> str:
    return (CORPUS / f"{name}.py").read_text(encoding="utf-8")


def _clear_markers() -> None:
    for marker in MARKERS:
        marker.unlink(missing_ok=True)


def _run_corpus(static_screen: bool) -> dict[str, VerificationReport]:
    _clear_markers()
    names = ["benign_notes", *ATTACKS, "benign_notes"]
    items = [(NOTES_SPEC, _source(name), NOTES_SEED) for name in names]
    reports = verify_batch(items, limits=FAST_LIMITS, static_screen=static_screen)
    assert reports[0].passed and reports[-1].passed, (reports[0].failures, reports[-1].failures)
    assert not [m for m in MARKERS if m.exists()], "a hostile module left a file behind"
    return dict(zip(names[1:-1], reports[1:-1], strict=True))


@pytest.fixture(scope="module")
def screened() -> dict[str, VerificationReport]:
    return _run_corpus(static_screen=True)


@pytest.fixture(scope="module")
def unscreened() -> dict[str, VerificationReport]:
    return _run_corpus(static_screen=False)


def test_corpus_has_every_attack_of_the_issue() -> None:
    assert set(ATTACKS) >= {
        "network_call",
        "os_system",
        "fork_loop",
        "big_allocation",
        "infinite_loop",
        "write_etc",
        "forbidden_import",
        "hidden_import",
        "sleep_forever",
    }


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_fails_verification_with_a_clear_reason(
    screened: dict[str, VerificationReport], attack: str
) -> None:
    report = screened[attack]
    assert not report.passed
    assert report.failures and report.failures[0].split(":")[0] in {
        "static_screen",
        "import",
        "sandbox",
        "tool_tests",
    }


# what stops each attack when only the runtime layer is there (screen off)
RUNTIME_STOPS = {
    "network_call": ("import of 'socket' is not allowed",),
    "os_system": ("os.system is not allowed",),
    "fork_loop": ("os.fork is not allowed",),
    "big_allocation": ("MemoryError",),
    # on a loaded machine the wall clock can run out before the CPU seconds do: both limits stop it
    "infinite_loop": ("cpu_limit", "wall-clock timeout"),
    "sleep_forever": ("wall-clock timeout",),
    "write_etc": ("outside the temp dir is not allowed",),
    "forbidden_import": ("import of 'ctypes' is not allowed",),
    "hidden_import": ("os.system is not allowed",),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_runtime_layer_alone_stops_the_attack(unscreened: dict[str, VerificationReport], attack: str) -> None:
    report = unscreened[attack]
    assert not report.passed
    assert any(stop in " ".join(report.failures) for stop in RUNTIME_STOPS[attack]), report.failures


def test_static_screen_names_the_line_and_the_reason() -> None:
    problems = screen_source(_source("hidden_import"))
    assert any("internal name '__builtins__'" in p for p in problems)
    assert any("getattr() with a computed attribute name" in p for p in problems)
    assert screen_source(_source("benign_notes")) == []
    assert screen_source("import os\nx = datetime.now()\n") == [
        "line 1: import of 'os' is not allowed",
        "line 2: call of .now() reads the wall clock; use the state's `now` field",
    ]


def test_audit_hook_allows_writes_only_inside_its_temp_dir(tmp_path: Path) -> None:
    hook = make_audit_hook(str(tmp_path))
    hook("open", (str(tmp_path / "scratch.txt"), "w", 0))
    hook("open", ("/etc/passwd", "r", 0))
    with pytest.raises(PermissionError, match="outside the temp dir"):
        hook("open", ("/etc/passwd", "a", 0))
    with pytest.raises(PermissionError, match=r"os\.remove"):
        hook("os.remove", ("/etc/hosts", None))
    with pytest.raises(PermissionError, match=r"socket\.connect"):
        hook("socket.connect", (None, ("example.com", 80)))
