"""composer.toml: the DESIGN.md example parses, defaults hold, and every mistake is a
ConfigError naming the file, the key and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from composer import config
from composer.config import Explore, Ready, Setup, TemplateOptions
from composer.errors import ConfigError, ExitCode
from composer.faults import FAULT_KINDS

DESIGN_EXAMPLE = """
[project]
name = "kvstore"
templates = "drivers"                  # default

[services.kv]
replicas = 3
command = "python3 -m kvstore --listen {host}:7000 --peers {hosts.kv} --data {data}"
ready = { tcp = 7000 }                 # or { command = "..." } exiting 0 when ready
env = { LOG_LEVEL = "info" }

[services.client]                      # drivers run on nodes of a service with drivers = true;
replicas = 1                           # without one, a node named "client" is added
drivers = true

[setup]
sdk = false                            # true: also wait for setup_complete from any process
timeout = "120s"

[explore]
timeline = "20s"                       # longest driver phase Hypothesis may choose
max_parallel = 4
command_timeout = "60s"
faults = ["partition", "loss", "kill", "pause", "clock"]   # default: all the backend supports
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "composer.toml"
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert str(path) in message, f"error does not name the file: {message}"
    assert info.value.exit_code == ExitCode.USAGE
    return message


# --- the full example -------------------------------------------------------------


def test_design_example_parses(tmp_path):
    project = config.load(write(tmp_path, DESIGN_EXAMPLE))
    assert project.name == "kvstore"
    assert project.root == tmp_path.resolve()
    assert project.templates_dir == tmp_path.resolve() / "drivers"
    assert [s.name for s in project.services] == ["kv", "client"]
    kv = project.service("kv")
    assert kv.replicas == 3
    assert kv.command.startswith("python3 -m kvstore --listen {host}:7000")
    assert kv.ready == Ready(tcp=7000)
    assert dict(kv.env) == {"LOG_LEVEL": "info"}
    assert kv.drivers is False
    assert kv.node_names() == ["kv-1", "kv-2", "kv-3"]
    client = project.service("client")
    assert client.drivers is True and client.command is None and client.ready is None
    assert project.driver_nodes() == ["client-1"]
    assert project.setup == Setup(sdk=False, timeout=120.0)
    assert project.explore == Explore(
        timeline=20.0, max_parallel=4, command_timeout=60.0,
        faults=("partition", "loss", "kill", "pause", "clock"),
    )


def test_load_accepts_the_project_directory(tmp_path):
    write(tmp_path, DESIGN_EXAMPLE)
    assert config.load(tmp_path).name == "kvstore"
    assert config.load(str(tmp_path)).name == "kvstore"


def test_defaults(tmp_path):
    project = config.load(write(tmp_path, """
        [services.kv]
        command = "kv"
    """))
    assert project.name == tmp_path.resolve().name
    assert project.templates_dir == tmp_path.resolve() / "drivers"
    kv = project.service("kv")
    assert (kv.replicas, kv.ready, kv.env, kv.drivers) == (1, None, (), False)
    assert project.setup == Setup(sdk=False, timeout=120.0)
    assert project.explore == Explore(timeline=20.0, max_parallel=4, command_timeout=60.0,
                                      faults=None)
    assert project.options_for("main") == TemplateOptions(check_exit_code=True)


def test_empty_file_is_a_project_with_only_a_client(tmp_path):
    project = config.load(write(tmp_path, ""))
    assert [(s.name, s.drivers) for s in project.services] == [("client", True)]
    assert project.driver_nodes() == ["client-1"]


def test_client_driver_node_added_when_no_service_has_drivers(tmp_path):
    project = config.load(write(tmp_path, """
        [services.kv]
        replicas = 2
        command = "kv"
    """))
    assert [s.name for s in project.services] == ["kv", "client"]
    assert project.service("client").drivers
    assert project.service("client").command is None
    assert project.driver_nodes() == ["client-1"]


def test_no_client_added_when_a_service_runs_drivers(tmp_path):
    project = config.load(write(tmp_path, """
        [services.kv]
        replicas = 2
        command = "kv"
        drivers = true
    """))
    assert [s.name for s in project.services] == ["kv"]
    assert project.driver_nodes() == ["kv-1", "kv-2"]


def test_client_name_taken_without_drivers(tmp_path):
    message = load_error(tmp_path, """
        [services.client]
        command = "c"
    """)
    assert "drivers = true" in message


@pytest.mark.parametrize("text, seconds", [
    ('"20s"', 20.0), ('"2m"', 120.0), ('"500ms"', 0.5), ('"1h"', 3600.0),
    ('"1.5s"', 1.5), ("30", 30.0), ("2.5", 2.5), ('"45"', 45.0),
])
def test_durations(tmp_path, text, seconds):
    project = config.load(write(tmp_path, f"""
        [setup]
        timeout = {text}
        [explore]
        timeline = {text}
        command_timeout = {text}
    """))
    assert project.setup.timeout == seconds
    assert project.explore.timeline == seconds
    assert project.explore.command_timeout == seconds


def test_ready_command_env_numbers_and_template_options(tmp_path):
    project = config.load(write(tmp_path, """
        [services.db]
        command = "db"
        ready = { command = "pg_isready" }
        env = { PORT = 5432, DEBUG = true, NAME = "x" }
        [template.main]
        check_exit_code = false
        [setup]
        sdk = true
        [explore]
        max_parallel = 16
        faults = []
    """))
    db = project.service("db")
    assert db.ready == Ready(command="pg_isready")
    assert dict(db.env) == {"PORT": "5432", "DEBUG": "True", "NAME": "x"}
    assert project.options_for("main") == TemplateOptions(check_exit_code=False)
    assert project.options_for("other") == TemplateOptions(check_exit_code=True)
    assert project.setup.sdk is True
    assert project.explore.max_parallel == 16
    assert project.explore.faults == ()


def test_parse_duration_directly():
    assert config.parse_duration("250ms", "k") == 0.25
    with pytest.raises(ConfigError, match="k="):
        config.parse_duration("soon", "k")


# --- errors -----------------------------------------------------------------------


def test_malformed_toml(tmp_path):
    message = load_error(tmp_path, """
        [services.kv
        replicas = 3
    """)
    assert "malformed TOML" in message
    assert "line" in message  # where to look


def test_unknown_top_level_table_suggests(tmp_path):
    message = load_error(tmp_path, """
        [servics.kv]
        command = "kv"
    """)
    assert "[servics]" in message
    assert "did you mean [services]?" in message


def test_unknown_top_level_table_without_close_match_lists_tables(tmp_path):
    message = load_error(tmp_path, "[zzz]\n")
    assert "[zzz]" in message
    for table in ("project", "services", "setup", "explore", "template"):
        assert table in message


@pytest.mark.parametrize("text, key, hint", [
    ("[services.kv]\nreplica = 3\n", "services.kv.replica", "'replicas'"),
    ("[services.kv]\ncommand = 'kv'\nreddy = { tcp = 1 }\n", "services.kv.reddy", "'ready'"),
    ("[explore]\nmax_paralel = 3\n", "explore.max_paralel", "'max_parallel'"),
    ("[explore]\nfault = ['kill']\n", "explore.fault", "'faults'"),
    ("[setup]\ntimout = '10s'\n", "setup.timout", "'timeout'"),
    ("[project]\nnmae = 'x'\n", "project.nmae", "'name'"),
    ("[project]\ntemplate = 'x'\n", "project.template", "'templates'"),
    ("[template.main]\ncheck_exitcode = false\n", "template.main.check_exitcode",
     "'check_exit_code'"),
])
def test_unknown_key_suggests(tmp_path, text, key, hint):
    message = load_error(tmp_path, text)
    assert f"unknown key {key}" in message
    assert f"did you mean {hint}?" in message


def test_unknown_key_without_close_match_lists_allowed(tmp_path):
    message = load_error(tmp_path, "[setup]\nzzzzzz = 1\n")
    assert "setup.zzzzzz" in message
    assert "sdk" in message and "timeout" in message


@pytest.mark.parametrize("text, key", [
    ('[services.kv]\nreplicas = "3"\n', "services.kv.replicas"),
    ("[services.kv]\nreplicas = 2.0\n", "services.kv.replicas"),
    ("[services.kv]\nreplicas = true\n", "services.kv.replicas"),
    ("[services.kv]\ncommand = 3\n", "services.kv.command"),
    ('[services.kv]\ndrivers = "yes"\n', "services.kv.drivers"),
    ('[services.kv]\nenv = "A=1"\n', "services.kv.env"),
    ("[explore]\nmax_parallel = true\n", "explore.max_parallel"),
    ('[explore]\nmax_parallel = "4"\n', "explore.max_parallel"),
    ('[setup]\nsdk = "true"\n', "setup.sdk"),
    ("[project]\nname = 3\n", "project.name"),
    ("[template.main]\ncheck_exit_code = 0\n", "template.main.check_exit_code"),
])
def test_wrong_types(tmp_path, text, key):
    message = load_error(tmp_path, text)
    assert f"{key}=" in message
    assert "must be" in message and "e.g." in message  # the type, and how to write it


@pytest.mark.parametrize("value", ['"fast"', "-1", "0", '"0s"', '"-5s"', "true", '"20 sec"',
                                   "nan", "inf"])
@pytest.mark.parametrize("key", ["explore.timeline", "explore.command_timeout", "setup.timeout"])
def test_bad_durations(tmp_path, key, value):
    table, name = key.split(".")
    message = load_error(tmp_path, f"[{table}]\n{name} = {value}\n")
    assert key in message
    assert any(fix in message for fix in ('"20s"', "longer than zero", "finite")), message


@pytest.mark.parametrize("text, key", [
    ("[services.kv]\nreplicas = 0\n", "services.kv.replicas"),
    ("[services.kv]\nreplicas = 1000\n", "services.kv.replicas"),
    ("[explore]\nmax_parallel = 0\n", "explore.max_parallel"),
])
def test_out_of_range_numbers(tmp_path, text, key):
    message = load_error(tmp_path, text)
    assert key in message and "between" in message


def test_unknown_fault_kind(tmp_path):
    message = load_error(tmp_path, '[explore]\nfaults = ["kill", "explode"]\n')
    assert "explore.faults" in message and "'explode'" in message
    for kind in FAULT_KINDS:
        assert kind in message


def test_faults_not_a_list_of_strings(tmp_path):
    assert "explore.faults" in load_error(tmp_path, '[explore]\nfaults = "kill"\n')
    assert "explore.faults" in load_error(tmp_path, "[explore]\nfaults = [1]\n")


def test_ready_without_command(tmp_path):
    message = load_error(tmp_path, "[services.kv]\nready = { tcp = 7000 }\n")
    assert "services.kv.ready" in message and "services.kv.command" in message
    assert "remove services.kv.ready" in message


@pytest.mark.parametrize("ready", [
    "{ tcp = 0 }", "{ tcp = 70000 }", '{ tcp = "7000" }', "{ tcp = true }", "{ tcp = -1 }",
])
def test_bad_ready_port(tmp_path, ready):
    message = load_error(tmp_path, f'[services.kv]\ncommand = "kv"\nready = {ready}\n')
    assert "services.kv.ready.tcp" in message and "1-65535" in message


@pytest.mark.parametrize("ready", [
    "{}", "7000", '{ tcp = 7000, command = "x" }', '{ http = "/" }', "{ command = 3 }",
])
def test_bad_ready_shape(tmp_path, ready):
    message = load_error(tmp_path, f'[services.kv]\ncommand = "kv"\nready = {ready}\n')
    assert "services.kv.ready" in message
    assert "tcp" in message or "string" in message


def test_bad_service_name(tmp_path):
    message = load_error(tmp_path, '[services.KV]\ncommand = "kv"\n')
    assert "services.KV" in message and "lower-case" in message


def test_env_value_not_scalar(tmp_path):
    message = load_error(tmp_path, '[services.kv]\nenv = { A = [1] }\n')
    assert "services.kv.env.A" in message


@pytest.mark.parametrize("text", [
    "services = 3\n", "setup = 1\n", "explore = 'x'\n", "project = []\n", "template = 2\n",
    "[services]\nkv = 3\n", "[template]\nmain = 1\n",
])
def test_tables_that_are_not_tables(tmp_path, text):
    assert "must be a table" in load_error(tmp_path, text)


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere" / "composer.toml"
    with pytest.raises(ConfigError) as info:
        config.load(missing)
    assert str(missing) in str(info.value)
    assert "composer.toml" in str(info.value)


def test_directory_without_config(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    assert str(tmp_path / "composer.toml") in str(info.value)


def test_binary_file_is_a_config_error(tmp_path):
    path = tmp_path / "composer.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(path) in str(info.value)


def test_project_is_frozen(tmp_path):
    project = config.load(write(tmp_path, DESIGN_EXAMPLE))
    with pytest.raises(AttributeError):
        project.name = "x"  # type: ignore[misc]


# --- placeholders (composer.services) ----------------------------------------------


def test_substitute_placeholders(tmp_path):
    from composer.config import PLACEHOLDER
    from composer.services import substitute

    node = SimpleNamespace(name="kv-2", address="127.0.1.2", data_dir=tmp_path / "data dir")
    hosts = {"kv": ["127.0.1.1", "127.0.1.2"], "client": ["127.0.2.1"]}
    command = ("run --listen {host}:7000 --name {name} --index {index} --data {data} "
               "--peers {hosts.kv} --client {hosts.client} --keep {other} {hosts}")
    assert substitute(command, node, 2, hosts) == (
        f"run --listen 127.0.1.2:7000 --name kv-2 --index 2 --data '{tmp_path}/data dir' "
        "--peers 127.0.1.1,127.0.1.2 --client 127.0.2.1 --keep {other} {hosts}"
    )
    assert PLACEHOLDER.findall("{host} {name} {index} {data} {hosts.kv} {nope}") == [
        "host", "name", "index", "data", "hosts.kv"]


@pytest.mark.parametrize("command, message", [
    ("run --peers {hosts.nope}", "unknown placeholder {hosts.nope}"),
    ("run --data {dta}", "unknown placeholder {dta}; did you mean {data}?"),
    ("run --peers {hosts.db}", "unknown placeholder {hosts.db}; did you mean {hosts.kv}?"),
])
def test_an_unknown_placeholder_is_a_config_error_naming_it(tmp_path, command, message):
    error = load_error(tmp_path, f'[services.kv]\ncommand = "{command}"\n')
    assert "services.kv.command" in error and message in error
    assert "{hosts.client}" in error  # the known ones are listed, the default driver service too


def test_shell_braces_are_no_placeholders(tmp_path):
    text = ("[services.kv]\ncommand = '''sh -c 'echo ${HOME} {a,b}; awk \"{print $1}\"' "
            "--peers {hosts.kv},{hosts.client} {index}'''\n")
    assert config.load(write(tmp_path, text)).service("kv").command.startswith("sh -c")


def test_a_utf8_bom_is_no_error(tmp_path):
    path = tmp_path / "composer.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'[project]\nname = "bom"\n')
    assert config.load(path).name == "bom"


def test_history_checks_of_a_template(tmp_path):
    project = config.load(write(tmp_path, """
        [project]
        name = "p"
        [[template.main.checks]]
        checker = "linearizable"
        model = "cas-register"
        name = "Register operations are linearizable"
        time_limit = "10s"
        [[template.main.checks]]
        checker = "linearizable"
        model = "set"
    """))
    checks = project.options_for("main").checks
    assert checks == (
        config.Check("linearizable", "Register operations are linearizable", "cas-register", 10.0),
        config.Check("linearizable", "History is linearizable as a set", "set", 60.0))


@pytest.mark.parametrize("table, wanted", [
    ('checker = "linearisable"\nmodel = "register"', "choose one of linearizable"),
    ('checker = "linearizable"', "needs one of register, cas-register"),
    ('checker = "linearizable"\nmodel = "regsiter"', "needs one of register"),
    ('checker = "linearizable"\nmodel = "register"\nlimit = 3', "did you mean 'time_limit'"),
    ('checker = "linearizable"\nmodel = "register"\ntime_limit = "soon"', "time_limit"),
    ('checker = "set"\nmodel = "register"', "the set checker takes no model"),
])
def test_a_bad_check_names_its_key(tmp_path, table, wanted):
    message = load_error(tmp_path, '[project]\nname = "p"\n[[template.main.checks]]\n' + table)
    assert "template.main.checks[0]" in message and wanted in message, message


def test_checks_must_be_a_list_and_names_unique(tmp_path):
    assert "[[template.main.checks]]" in load_error(
        tmp_path, '[project]\nname = "p"\n[template.main]\nchecks = 3\n')
    twice = ('[[template.main.checks]]\nchecker = "linearizable"\nmodel = "register"\n') * 2
    assert "another check has that name" in load_error(tmp_path, '[project]\nname = "p"\n' + twice)
