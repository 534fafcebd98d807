"""The composer command on good and bad projects: exit codes and messages a user reads."""

from __future__ import annotations

import pytest

SIMPLE = """
    [project]
    name = "simple"

    [explore]
    timeline = "1s"
"""


def test_validate_lists_templates_and_commands(project):
    project.config(SIMPLE + '\n[[template.main.checks]]\nchecker = "set"\n')
    project.command("parallel_driver_write", "print('w')")
    project.command("serial_driver_read", "print('r')")
    project.command("eventually_check", "print('e')", template="other")
    project.command("anytime_look", "print('a')", template="other")
    project.command("helper_lib.py", "X = 1", executable=False)
    result = project.composer("validate")
    assert result.code == 0, result.output
    assert "template 'main'" in result.stdout and "template 'other'" in result.stdout
    assert "parallel_driver   parallel_driver_write" in result.stdout
    assert "eventually        eventually_check" in result.stdout
    assert "helper_lib" not in result.stdout
    assert "service client: 1 node(s)" in result.stdout
    assert "check             Acknowledged set elements are never lost: set" in result.stdout


@pytest.mark.parametrize("name, executable, expected", [
    ("paralel_driver_write", True, "Did you mean parallel_driver_write?"),
    ("parallel_driver_write", False, "chmod +x"),
    ("test_write", True, "unknown command prefix"),
])
def test_bad_command_is_a_usage_error_naming_the_file(project, name, executable, expected):
    project.config(SIMPLE)
    project.command("anytime_ok", "print(1)")
    path = project.command(name, "print(1)", executable=executable)
    for command in ("validate", "run", "explore"):
        result = project.composer(command)
        assert result.code == 2, result.output
        assert str(path) in result.stderr and expected in result.stderr
        assert "Traceback" not in result.stderr


def test_template_without_driver_is_rejected(project):
    project.config(SIMPLE)
    project.command("first_setup", "print(1)")
    project.command("eventually_check", "print(1)")
    result = project.composer("validate")
    assert result.code == 2
    assert "has no driver or anytime command" in result.stderr


@pytest.mark.parametrize("config, expected", [
    ("[project\nname = 1", "malformed TOML"),
    ("[explore]\nmax_paralel = 3", "did you mean 'max_parallel'?"),
    ("[explore]\ntimeline = \"fast\"", "explore.timeline='fast' is not a duration"),
    ("[services.kv]\nreplicas = \"3\"", "services.kv.replicas='3' must be an integer"),
    ("[explore]\nfaults = [\"meteor\"]", "unknown fault kind 'meteor'"),
    ("[servics.kv]\nreplicas = 1", "did you mean [services]?"),
])
def test_bad_config_is_a_usage_error_naming_the_key(project, config, expected):
    project.config(config)
    project.command("parallel_driver_x", "print(1)")
    result = project.composer("run")
    assert result.code == 2, result.output
    assert "composer.toml" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_project_says_what_a_project_is(tmp_path):
    from tests.conftest import Project

    result = Project(tmp_path).composer("validate", str(tmp_path / "nowhere"))
    assert result.code == 2
    assert "composer.toml" in result.stderr


def test_help_lists_subcommands(project):
    result = project.composer("--help")
    assert result.code == 0
    for command in ("validate", "run", "explore", "replay"):
        assert command in result.stdout
    result = project.composer("explore", "--help")
    assert "--duration" in result.stdout and "--seed" in result.stdout


def test_an_unknown_backend_is_a_usage_error_naming_the_backends(project):
    project.config(SIMPLE)
    project.command("parallel_driver_x", "print(1)")
    result = project.composer("run", "--cluster", "ec2")
    assert result.code == 2
    assert "invalid choice: 'ec2' (choose from 'local', 'netns', 'docker', 'agents', 'aws')" in (
        result.stderr)


def test_agents_and_their_file_come_together(project, tmp_path):
    project.config(SIMPLE)
    project.command("parallel_driver_x", "print(1)")
    alone = project.composer("run", "--cluster", "agents")
    assert alone.code == 2 and "--cluster agents needs --agents FILE" in alone.stderr
    stray = project.composer("run", "--cluster", "netns", "--agents", str(tmp_path / "a.toml"))
    assert stray.code == 2 and "--agents names the machines of --cluster agents" in stray.stderr
    missing = project.composer("run", "--cluster", "agents", "--agents", str(tmp_path / "a.toml"))
    assert missing.code == 2 and "a.toml: cannot read it" in missing.stderr


def test_explore_json_prints_the_summary_and_progress_lines_a_script_can_parse(project):
    import json
    import shlex

    project.config(SIMPLE)
    project.command("parallel_driver_ok", "import composer_sdk as sdk; sdk.always(True, 'Fine', {})")
    result = project.composer("explore", "--duration", "3s", "--seed", "1", "--json")
    assert result.code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["version"] == 3 and summary["timelines"] >= 1
    assert summary["utilization"]["commands"]["parallel_driver_ok"]["completed"] >= 1
    progress = [shlex.split(line) for line in result.stderr.splitlines()
                if line.startswith("progress ")]
    assert len(progress) == summary["timelines"]
    fields = dict(pair.split("=", 1) for pair in progress[-1][1:])
    assert fields["timelines"] == str(summary["timelines"]) and fields["verdict"] == "pass"


def test_report_writes_the_html_and_junit_of_a_run_again(project):
    project.config(SIMPLE)
    project.command("parallel_driver_ok", "import composer_sdk as sdk; sdk.always(True, 'Fine', {})")
    assert project.composer("explore", "--duration", "2s", "--seed", "1", "--quiet").code == 0
    run_dir, = (project.root / ".composer" / "runs").iterdir()
    for name in ("report.html", "junit.xml"):
        assert (run_dir / name).is_file()
        (run_dir / name).unlink()
    result = project.composer("report", str(run_dir))
    assert result.code == 0, result.output
    assert "Fine" in (run_dir / "report.html").read_text()
    assert 'name="Fine"' in (run_dir / "junit.xml").read_text()
    missing = project.composer("report", str(project.root))
    assert missing.code == 2 and "no summary.json here" in missing.stderr


@pytest.mark.parametrize("text, expected", [
    ("", "not JSON"),
    ('{"version": 3, "proj', "not JSON"),  # cut off while being written
    ("[]", "not a composer summary"),
    ('{"version": 99}', "not a composer summary of a version this composer reads"),
    ('{"version": 3}', "a field composer needs is missing"),
])
def test_report_of_a_broken_summary_is_a_usage_error_saying_so(project, text, expected):
    run_dir = project.root / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(text)
    result = project.composer("report", str(run_dir))
    assert result.code == 2, result.output
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_replay_that_no_longer_fits_its_project_is_a_usage_error_naming_what(project):
    import json

    project.config(SIMPLE)
    project.command("parallel_driver_ok", "print('ok')")
    timeline = {"version": 1, "template": "main", "length": 1.0, "seed": 1, "events": [
        {"type": "start", "at": 0.0, "command": "parallel_driver_ok", "node": "client-9",
         "seed": 1},
        {"type": "start", "at": 0.1, "command": "parallel_driver_gone", "node": "client-1",
         "seed": 2}]}
    replay = {"version": 1, "project": str(project.root), "backend": "local",
              "property": "P", "timeline": timeline}
    path = project.root / "replay.json"
    path.write_text(json.dumps(replay))
    result = project.composer("replay", str(path))
    assert result.code == 2, result.output
    assert "node(s) client-9 (it has client-1)" in result.stderr
    assert "command(s) parallel_driver_gone" in result.stderr
    path.write_text(json.dumps({**replay, "version": 7}))
    result = project.composer("replay", str(path))
    assert result.code == 2 and "version 7" in result.stderr, result.output


@pytest.mark.parametrize("args, expected", [
    (["--max-parallel", "0"], "--max-parallel: 0 must be 1 to 256"),
    (["--faults", ""], "or 'none' for no faults"),
    (["--faults", "kill,,stop"], "or 'none' for no faults"),
    (["--faults", "kil"], "unknown fault kind 'kil'"),
    (["--reruns", "-1"], "-1 must be at least 0"),
    (["--jobs", "0"], "--jobs: 0 must be 1 to 1024"),
    (["--jobs", "many"], "--jobs: 'many' is not a whole number"),
])
def test_bad_option_values_are_usage_errors_not_ignored(project, args, expected):
    project.config(SIMPLE)
    project.command("parallel_driver_ok", "print('ok')")
    result = project.composer("explore", "--duration", "1s", *args)
    assert result.code == 2, result.output
    assert expected in result.stderr


def test_template_options_of_no_template_and_broken_links_are_usage_errors(project):
    project.config(SIMPLE + "\n    [template.nope]\n    check_exit_code = false\n")
    project.command("parallel_driver_ok", "print('ok')")
    result = project.composer("validate")
    assert result.code == 2 and "[template.nope] names no template" in result.stderr
    assert "the templates are main" in result.stderr
    project.config(SIMPLE)
    (project.root / "drivers" / "main" / "serial_driver_gone").symlink_to("/nonexistent/x")
    result = project.composer("validate")
    assert result.code == 2 and "broken symbolic link" in result.stderr, result.output


def test_debug_after_the_subcommand_and_an_internal_error_exits_3(project, monkeypatch, capsys):
    from composer import cli

    project.config(SIMPLE)
    project.command("parallel_driver_ok", "print('ok')")
    assert project.composer("validate", str(project.root), "--debug").code == 0

    def broken(args):
        raise RuntimeError("a composer bug")

    monkeypatch.setattr(cli, "_validate", broken)
    assert cli.main(["validate", str(project.root)]) == 3  # never 1: no property failed
    err = capsys.readouterr().err
    assert "internal error: RuntimeError('a composer bug')" in err and "--debug" in err
    assert "Traceback" not in err
    assert cli.main(["validate", str(project.root), "--debug"]) == 3
    assert "Traceback" in capsys.readouterr().err
