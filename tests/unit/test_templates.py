"""Template discovery: every prefix of the design table is classified, helpers are
ignored, and every malformed template is a TemplateError naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer import templates
from composer.errors import ConfigError, ExitCode, TemplateError
from composer.templates import Command, Template

PREFIXES = {
    "first_": "first",
    "parallel_driver_": "parallel_driver",
    "serial_driver_": "serial_driver",
    "singleton_driver_": "singleton_driver",
    "anytime_": "anytime",
    "eventually_": "eventually",
    "finally_": "finally",
}


def make(path: Path, executable: bool = True, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)
    return path


def discover_error(drivers: Path) -> str:
    with pytest.raises(TemplateError) as info:
        templates.discover(drivers)
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == ExitCode.USAGE
    return str(info.value)


def test_every_prefix_is_classified(tmp_path):
    drivers = tmp_path / "drivers"
    for prefix in PREFIXES:
        make(drivers / "main" / f"{prefix}x")
    found = templates.discover(drivers)
    assert list(found) == ["main"]
    main = found["main"]
    assert main.name == "main"
    assert main.path == (drivers / "main").resolve()
    assert {c.name: c.kind for c in main.commands} == {
        f"{prefix}x": kind for prefix, kind in PREFIXES.items()}
    assert set(templates.KINDS) == set(PREFIXES.values())
    for command in main.commands:
        assert command.path == (drivers / "main" / command.name).resolve()
        assert command.path.is_absolute()


def test_commands_sorted_and_looked_up(tmp_path):
    drivers = tmp_path / "drivers"
    for name in ("parallel_driver_b", "anytime_z", "parallel_driver_a", "first_setup"):
        make(drivers / "main" / name)
    main = templates.discover(drivers)["main"]
    assert [c.name for c in main.commands] == sorted(c.name for c in main.commands)
    assert [c.name for c in main.of_kind("parallel_driver")] == [
        "parallel_driver_a", "parallel_driver_b"]
    assert [c.name for c in main.of_kind("parallel_driver", "anytime")] == [
        "anytime_z", "parallel_driver_a", "parallel_driver_b"]
    assert main.of_kind("finally") == []
    assert main.command("first_setup").kind == "first"
    with pytest.raises(TemplateError, match="parallel_driver_c"):
        main.command("parallel_driver_c")


def test_names_with_more_underscores_and_dots(tmp_path):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "parallel_driver_write_many.py")
    make(drivers / "main" / "serial_driver_check.sh")
    main = templates.discover(drivers)["main"]
    assert {c.name: c.kind for c in main.commands} == {
        "parallel_driver_write_many.py": "parallel_driver",
        "serial_driver_check.sh": "serial_driver",
    }


def test_helpers_dotfiles_and_pycache_are_ignored(tmp_path):
    drivers = tmp_path / "drivers"
    main = drivers / "main"
    make(main / "parallel_driver_write")
    make(main / "helper_lib.py", executable=False)
    make(main / "helper_tools" / "whatever.txt", executable=False)
    make(main / "helper_tools" / "README", executable=False)
    make(main / ".gitignore", executable=False)
    make(main / ".hidden_dir" / "x", executable=False)
    make(main / "__pycache__" / "helper_lib.cpython-311.pyc", executable=False)
    make(drivers / ".git" / "HEAD", executable=False)
    make(drivers / ".DS_Store", executable=False)
    (drivers / "__pycache__").mkdir()
    found = templates.discover(drivers)
    assert list(found) == ["main"]
    assert [c.name for c in found["main"].commands] == ["parallel_driver_write"]


def test_several_templates(tmp_path):
    drivers = tmp_path / "drivers"
    make(drivers / "writes" / "parallel_driver_write")
    make(drivers / "writes" / "finally_check")
    make(drivers / "reads" / "serial_driver_read")
    make(drivers / "lonely" / "singleton_driver_migrate")
    make(drivers / "chaos" / "anytime_poke")
    found = templates.discover(drivers)
    assert sorted(found) == ["chaos", "lonely", "reads", "writes"]
    assert all(isinstance(t, Template) for t in found.values())
    assert [c.name for c in found["writes"].commands] == ["finally_check", "parallel_driver_write"]
    assert [c.kind for c in found["lonely"].commands] == ["singleton_driver"]
    assert [c.kind for c in found["chaos"].commands] == ["anytime"]


# --- errors -----------------------------------------------------------------------


def test_unknown_prefix_suggests_the_rename(tmp_path):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "parallel_driver_ok")
    bad = make(drivers / "main" / "paralel_driver_write")
    message = discover_error(drivers)
    assert str(bad) in message
    assert "Did you mean parallel_driver_write?" in message
    assert "parallel_driver_" in message and "helper_" in message  # the prefix rule


@pytest.mark.parametrize("typo, fix", [
    ("serial_drivr_read", "serial_driver_read"),
    ("singelton_driver_x", "singleton_driver_x"),
    ("eventualy_check", "eventually_check"),
    ("finaly_check", "finally_check"),
    ("anytme_poke", "anytime_poke"),
    ("helpr_lib.py", "helper_lib.py"),
])
def test_typo_suggestions(tmp_path, typo, fix):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "parallel_driver_ok")
    make(drivers / "main" / typo)
    assert f"Did you mean {fix}?" in discover_error(drivers)


def test_unrelated_name_has_no_suggestion_but_the_rule(tmp_path):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "parallel_driver_ok")
    bad = make(drivers / "main" / "README.md", executable=False)
    message = discover_error(drivers)
    assert str(bad) in message
    assert "Did you mean" not in message
    for prefix in PREFIXES:
        assert prefix in message


def test_non_executable_command(tmp_path):
    drivers = tmp_path / "drivers"
    bad = make(drivers / "main" / "parallel_driver_write", executable=False)
    message = discover_error(drivers)
    assert str(bad) in message
    assert f"chmod +x {bad}" in message


@pytest.mark.parametrize("name", ["lib", "parallel_driver_dir"])
def test_non_helper_subdirectory(tmp_path, name):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "parallel_driver_write")
    make(drivers / "main" / name / "thing.py")
    message = discover_error(drivers)
    assert str(drivers / "main" / name) in message
    assert f"helper_{name}" in message


def test_file_directly_in_templates_dir(tmp_path):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "parallel_driver_write")
    bad = make(drivers / "parallel_driver_read")
    message = discover_error(drivers)
    assert str(bad) in message
    assert f"{drivers}/main/parallel_driver_read" in message  # where to move it


def test_empty_template(tmp_path):
    drivers = tmp_path / "drivers"
    make(drivers / "good" / "parallel_driver_write")
    (drivers / "empty").mkdir()
    message = discover_error(drivers)
    assert str(drivers / "empty") in message
    assert "parallel_driver_" in message and "anytime_" in message


@pytest.mark.parametrize("names", [
    ["first_setup"], ["eventually_check"], ["finally_check"],
    ["first_setup", "eventually_check", "finally_check"],
    ["helper_only.py"],
])
def test_template_without_driver_or_anytime(tmp_path, names):
    drivers = tmp_path / "drivers"
    for name in names:
        make(drivers / "main" / name)
    message = discover_error(drivers)
    assert str(drivers / "main") in message
    assert "no driver or anytime command" in message


def test_empty_templates_dir(tmp_path):
    drivers = tmp_path / "drivers"
    drivers.mkdir()
    message = discover_error(drivers)
    assert str(drivers) in message
    assert f"{drivers}/main/" in message


def test_missing_templates_dir(tmp_path):
    drivers = tmp_path / "nowhere"
    message = discover_error(drivers)
    assert str(drivers) in message
    assert "parallel_driver_" in message


def test_templates_dir_is_a_file(tmp_path):
    drivers = make(tmp_path / "drivers", executable=False)
    assert str(drivers) in discover_error(drivers)


@pytest.mark.parametrize("name", list(PREFIXES) + [p.rstrip("_") for p in PREFIXES])
def test_bare_prefix(tmp_path, name):
    drivers = tmp_path / "drivers"
    make(drivers / "main" / "anytime_ok")
    bad = make(drivers / "main" / name)
    message = discover_error(drivers)
    assert str(bad) in message
    assert f"{name.rstrip('_')}_check" in message  # an example of a complete name


def test_command_is_plain_data():
    command = Command(name="parallel_driver_x", kind="parallel_driver", path=Path("/x"))
    assert command == Command(name="parallel_driver_x", kind="parallel_driver", path=Path("/x"))
    with pytest.raises(AttributeError):
        command.kind = "first"  # type: ignore[misc]
