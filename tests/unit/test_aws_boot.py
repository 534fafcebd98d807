"""What an instance of the aws backend boots from: the agent's wheel (built here, named
by its content) and the user-data script; and the aws settings of composer.toml and
the command line."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from composer.aws import agent_wheel, settings, user_data
from composer.aws.instances import _with_expiry
from composer.cli import main
from composer.config import load as load_project
from composer.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_wheel_is_the_same_bytes_for_the_same_sources_and_pip_installs_it(tmp_path):
    wheel = agent_wheel.build()
    assert agent_wheel.build().digest == wheel.digest == hashlib.sha256(wheel.data).hexdigest()
    assert wheel.key == f"agent/{wheel.digest}/{wheel.name}"
    archive = zipfile.ZipFile(io.BytesIO(wheel.data))
    names = archive.namelist()
    assert "composer_agent/server.py" in names and "composer_sdk/assertions.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    record = archive.read(f"{agent_wheel.DISTRIBUTION}-0.1.0.dist-info/RECORD").decode()
    for line in record.splitlines()[:-1]:  # every hash is right (pip checks them too)
        name, digest, size = line.rsplit(",", 2)
        data = archive.read(name)
        assert digest == "sha256=" + base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode() and int(size) == len(data)
    path = tmp_path / wheel.name
    path.write_bytes(wheel.data)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(tmp_path / "site"), str(path)], check=True)
    assert (tmp_path / "site" / "composer_agent" / "clock_fix.c").is_file()
    assert (tmp_path / "site" / "composer_sdk" / "bin" / "composer-sync").stat().st_mode & 0o111


def test_the_user_data_is_a_shell_script_quoting_what_it_is_given():
    url = "http://10.213.0.1:5000/b/agent/x.whl?X-Amz-Signature=a&b='c'"
    script = user_data.script(url, "ab" * 32, "http://h/creds?x=1&y=2", port=7800,
                              heartbeat_timeout=120)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert "WHEEL_URL='http://10.213.0.1:5000/b/agent/x.whl?X-Amz-Signature=a&b='\"'\"'c'\"'\"''" \
        in script
    assert "--heartbeat-timeout 120 --poweroff" in script and "\npoweroff\n" in script
    assert "BEGIN" not in script, "no key or certificate is in the user data"
    armed = _with_expiry(script, 4)
    assert armed.splitlines()[1].startswith("shutdown -P +240")
    assert len(armed.encode()) < 16384


def test_aws_settings_from_composer_toml_are_checked_where_they_are_read(tmp_path):
    (tmp_path / "drivers" / "main").mkdir(parents=True)
    toml = tmp_path / "composer.toml"
    toml.write_text('[aws]\nregion = "eu-west-1"\ninstance_type = "t3.medium"\n')
    assert dict(load_project(tmp_path).aws) == {"instance_type": "t3.medium",
                                                "region": "eu-west-1"}
    toml.write_text('[aws]\nregoin = "eu-west-1"\n')
    with pytest.raises(ConfigError, match=r"composer.toml: unknown key aws.regoin: did you "
                                          r"mean 'region'"):
        load_project(tmp_path)
    toml.write_text('[aws]\nreach = "vpn"\n')
    with pytest.raises(ConfigError, match=r"composer.toml: aws reach='vpn'"):
        load_project(tmp_path)
    toml.write_text('[aws]\nkey_name = "mine"\n')
    with pytest.raises(ConfigError, match="without a key pair"):
        load_project(tmp_path)


def test_boot_timeout_and_reach_are_settings():
    loaded = settings.load({"boot_timeout": 30, "reach": "private"}, environ={})
    assert (loaded.boot_timeout, loaded.reach) == (30, "private")
    assert settings.load(environ={"COMPOSER_AWS_BOOT_TIMEOUT": "60"}).boot_timeout == 60
    with pytest.raises(ConfigError, match="boot_timeout"):
        settings.load({"boot_timeout": 0}, environ={})


@pytest.mark.parametrize("argv, message", [
    (["run", "--aws", "region"], "give KEY=VALUE"),
    (["run", "--cluster", "local", "--aws", "region=eu-west-1"],
     "--aws sets up the aws backend: use it with --cluster aws"),
    (["explore", "--cluster", "aws", "--ray", "auto"], "--cluster aws with --ray"),
    (["run", "--cluster", "aws", "--aws", "flavour=big"], "aws flavour='big': unknown setting"),
])
def test_aws_flags_that_cannot_work_are_usage_errors(tmp_path, monkeypatch, capfd, argv,
                                                      message):
    shutil.copytree(EXAMPLES / "kvstore", tmp_path / "kv")
    monkeypatch.chdir(tmp_path / "kv")
    if "KEY=VALUE" in message:  # argparse's own
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    else:
        assert main(argv) == 2
    assert message in capfd.readouterr().err
