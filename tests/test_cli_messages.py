"""The CLI's errors are one line a user can act on; a failed blocking check is printed in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from envfactory_dagster.cli import main

NOTES = (
    "openapi: 3.0.3\ninfo: {title: Notes, version: '1'}\n"
    "paths:\n  /notes:\n    get:\n      operationId: listNotes\n"
    "      responses: {'200': {description: ok}}\n"
)


def _catalog(tmp_path: Path) -> Path:
    (tmp_path / "cat" / "office").mkdir(parents=True)
    (tmp_path / "cat" / "office" / "notes.yaml").write_text(NOTES)
    return tmp_path / "cat"


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_unknown_asset_lists_the_valid_names(tmp_path, envfactory_home, capsys) -> None:
    code = main(
        ["materialize", "--resources-dir", str(_catalog(tmp_path)), "--select", "authentic_resourcez"]
    )
    [line] = _error_lines(capsys)
    assert code == 2 and "unknown asset 'authentic_resourcez'" in line and "authentic_resources," in line


def test_empty_folder_is_an_error(tmp_path, envfactory_home, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["materialize", "--resources-dir", str(tmp_path / "empty")]) == 2
    [line] = _error_lines(capsys)
    assert "has no domain folders" in line
    (tmp_path / "empty" / "office").mkdir()
    assert main(["materialize", "--resources-dir", str(tmp_path / "empty")]) == 2
    assert "no resource files" in _error_lines(capsys)[0]


def test_unknown_environment_id_is_one_line(envfactory_home, capsys) -> None:
    assert main(["serve", "mcp", "--env-id", "env_nope"]) == 2
    [line] = _error_lines(capsys)
    assert "env_nope" in line and "verified_envs" in line


@pytest.mark.parametrize("command", [["materialize"], ["audit"], ["where"], ["serve"], ["serve", "mcp"]])
def test_every_subcommand_has_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


def test_a_failed_blocking_check_names_asset_partition_check_rows_and_what_to_do(
    tmp_path, envfactory_home, capsys
) -> None:
    catalog = _catalog(tmp_path)
    args = [
        "materialize",
        "--resources-dir",
        str(catalog),
        "--select",
        "authentic_resources",
        "--workers",
        "1",
    ]
    assert main([*args, "--require-license"]) == 1
    problems = [line for line in _error_lines(capsys) if "blocking check" in line]
    assert len(problems) == 1
    assert "authentic_resources:license_known" in problems[0] and "partition office" in problems[0]
    assert "'unknown'" in problems[0] and "What to do" in problems[0]
    assert main(args) == 0, "without --require-license an unknown licence is a warning"
