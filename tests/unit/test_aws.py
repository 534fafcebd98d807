"""composer.aws against moto in server mode: one server for the module, reset between
tests, reached over HTTP through AWS_ENDPOINT_URL (as boto3 honours it) with fake
credentials, so nothing here can reach AWS itself."""

from __future__ import annotations

import base64
import datetime
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("boto3", reason="pip install 'composer-dst[test]' (boto3) for the aws tests")
moto_server = pytest.importorskip("moto.server",
                                  reason="pip install 'moto[server]' for the aws tests")

from composer import aws  # noqa: E402
from composer.aws.session import aws_errors  # noqa: E402
from composer.errors import ConfigError, InfraError  # noqa: E402

REGION = "eu-west-1"
AMI = "ami-12345678"
SCRIPT = "#!/bin/sh\necho agent\n"
REPO = Path(__file__).resolve().parents[2]
#: what a test process may not inherit: it would point boto3 elsewhere
_FOREIGN = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
            "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    """One moto server for the module, and an environment pointing boto3 at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    nowhere = str(tmp_path_factory.mktemp("aws") / "none")
    with pytest.MonkeyPatch.context() as mp:
        for name in _FOREIGN + tuple(k for k in os.environ if k.startswith("COMPOSER_AWS_")):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_CONFIG_FILE", nowhere)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_ENDPOINT_URL", url)
        yield url
    server.stop()


@pytest.fixture
def moto(moto_url):
    """A moto with nothing in it."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", data=b"",
                                                  method="POST")).close()
    return moto_url


@pytest.fixture
def settings(moto):
    return aws.load({"region": REGION, "ami": AMI})


class Calls:
    """A connection whose every AWS call is counted by operation (a boto3 event hook)."""

    def __init__(self, settings: aws.AwsSettings) -> None:
        self.aws = aws.connect(settings)
        self.made: Counter[str] = Counter()
        #: the parameters of each RunInstances call, as composer passed them to boto3
        self.launches: list[dict] = []
        self.aws.session.events.register("before-call.*.*", self._count)
        self.aws.session.events.register("before-parameter-build.ec2.RunInstances",
                                         lambda params, **_: self.launches.append(dict(params)))

    def _count(self, event_name: str, **_) -> None:
        self.made[event_name.rsplit(".", 1)[-1]] += 1

    def changing(self) -> dict[str, int]:
        """The calls that change something (everything but Describe/Get/List/Head)."""
        return {op: n for op, n in self.made.items()
                if not op.startswith(("Describe", "Get", "List", "Head"))}


@pytest.fixture
def calls(settings) -> Calls:
    return Calls(settings)


def composer_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "composer.cli", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120, env={**os.environ, **(env or {})})


def tags_of(item: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}


def instances_of(ec2, run: str) -> list[dict]:
    reply = ec2.describe_instances(Filters=[{"Name": "tag:composer:run", "Values": [run]}])
    return [i for r in reply["Reservations"] for i in r["Instances"]]


# --- settings and connection ---------------------------------------------------------


def test_settings_come_from_flags_then_environment_then_defaults():
    plain = aws.load({}, environ={})
    assert (plain.instance_type, plain.ami, plain.max_instances, plain.max_hours, plain.name) == (
        "t3.small", "/aws/service/debian/release/12/latest/amd64", 16, 4.0, "composer")
    env = {"COMPOSER_AWS_MAX_INSTANCES": "3", "COMPOSER_AWS_INSTANCE_TYPE": "m6i.large"}
    mixed = aws.load({"instance_type": "c6i.large", "region": None}, environ=env)
    assert (mixed.max_instances, mixed.instance_type, mixed.region) == (3, "c6i.large", None)
    # AWS_REGION as the other SDKs read it (boto3 reads only AWS_DEFAULT_REGION)
    assert aws.load({}, environ={"AWS_REGION": "eu-west-2"}).region == "eu-west-2"
    assert aws.load({"region": "us-east-1"}, environ={"AWS_REGION": "eu-west-2"}).region == (
        "us-east-1")
    with pytest.raises(ConfigError, match="COMPOSER_AWS_MAX_HOURS='soon': not a number"):
        aws.load({}, environ={"COMPOSER_AWS_MAX_HOURS": "soon"})
    with pytest.raises(ConfigError, match="max_instances=0: a whole number from 1"):
        aws.load({"max_instances": 0}, environ={})
    with pytest.raises(ConfigError, match="without a key pair"):
        aws.load({"key_name": "mine"}, environ={})
    with pytest.raises(ConfigError, match="region='Europe'"):
        aws.load({"region": "Europe"}, environ={})


def test_without_boto3_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'composer-dst\[aws\]'"):
        aws.connect(aws.AwsSettings(region=REGION))


def test_an_aws_refusal_is_one_line_naming_the_operation(settings):
    with pytest.raises(InfraError) as raised:
        with aws_errors():
            aws.connect(settings).ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert str(raised.value).startswith("AWS refused DescribeInstances: "
                                        "InvalidInstanceID.NotFound")
    assert "\n" not in str(raised.value)


# --- bootstrap, status, teardown -----------------------------------------------------


def test_bootstrap_twice_creates_nothing_the_second_time(settings, calls):
    said: list[str] = []
    first = aws.bootstrap(settings, said.append, aws=calls.aws)
    assert not first.missing()
    assert sum(line.startswith("created ") for line in said) == 8
    made = calls.changing()
    assert made["CreateVpc"] == made["CreateSubnet"] == made["CreateSecurityGroup"] == 1
    calls.made.clear()
    said.clear()
    second = aws.bootstrap(settings, said.append, aws=calls.aws)
    assert second == first
    assert calls.changing() == {}, "the second bootstrap changed something"
    assert sum(line.startswith("found ") for line in said) == 8
    assert not any(line.startswith(("created", "attached", "routed", "associated", "added"))
                   for line in said)


def test_bootstrap_makes_a_public_subnet_an_open_group_and_a_role_without_rights(settings):
    made = aws.bootstrap(settings, lambda _: None)
    conn = aws.connect(settings)
    ec2 = conn.ec2
    for kind, item in (("vpc", ec2.describe_vpcs(VpcIds=[made.vpc])["Vpcs"][0]),
                       ("subnet", ec2.describe_subnets(SubnetIds=[made.subnet])["Subnets"][0])):
        assert tags_of(item)["composer:bootstrap"] == "composer", kind
    assert ec2.describe_vpcs(VpcIds=[made.vpc])["Vpcs"][0]["CidrBlock"] == "10.213.0.0/16"
    assert ec2.describe_subnets(SubnetIds=[made.subnet])["Subnets"][0]["MapPublicIpOnLaunch"]
    table = ec2.describe_route_tables(RouteTableIds=[made.route_table])["RouteTables"][0]
    assert {"0.0.0.0/0": made.internet_gateway} == {
        r["DestinationCidrBlock"]: r.get("GatewayId") for r in table["Routes"]
        if r.get("DestinationCidrBlock") == "0.0.0.0/0"}
    assert [a["SubnetId"] for a in table["Associations"]] == [made.subnet]
    rules = ec2.describe_security_groups(GroupIds=[made.security_group])["SecurityGroups"][0]
    members = [r for r in rules["IpPermissions"] if r["IpProtocol"] == "-1"]
    assert [p["GroupId"] for p in members[0]["UserIdGroupPairs"]] == [made.security_group]
    agent = [r for r in rules["IpPermissions"] if r.get("FromPort") == 7800]
    assert agent[0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0" and agent[0]["ToPort"] == 7800
    assert len(rules["IpPermissions"]) == 2
    assert conn.iam.list_attached_role_policies(RoleName=made.role)["AttachedPolicies"] == []
    assert conn.iam.list_role_policies(RoleName=made.role)["PolicyNames"] == []
    profile = conn.iam.get_instance_profile(InstanceProfileName=made.instance_profile)
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == [made.role]
    assert conn.s3.get_bucket_versioning(Bucket=made.bucket).get("Status") in (None, "Suspended")
    assert {"Key": "composer:bootstrap", "Value": "composer"} in conn.s3.get_bucket_tagging(
        Bucket=made.bucket)["TagSet"]


def test_teardown_refuses_while_an_instance_runs_then_removes_everything(settings):
    made = aws.bootstrap(settings, lambda _: None)
    conn = aws.connect(settings)
    conn.s3.put_object(Bucket=made.bucket, Key="agent/composer.whl", Body=b"wheel")
    aws.launch(settings, "busy-run", 2, SCRIPT, aws=conn)
    with pytest.raises(ConfigError) as refused:
        aws.teardown(settings, lambda _: None, aws=conn)
    assert "run busy-run (2 instances)" in str(refused.value)
    assert "composer gc --cluster aws" in str(refused.value)
    assert not aws.status(settings, aws=conn).resources.missing(), "a refusal removed something"
    aws.terminate(settings, "busy-run", aws=conn, poll=0.05)
    removed = aws.teardown(settings, lambda _: None, aws=conn, poll=0.05)
    assert len(removed) == 8
    after = aws.status(settings, aws=conn)
    assert after.resources.missing() == [kind for kind, _ in made.items()]
    tagged = [{"Name": "tag:composer:bootstrap", "Values": ["composer"]}]
    assert conn.ec2.describe_vpcs(Filters=tagged)["Vpcs"] == []
    assert conn.ec2.describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert made.bucket not in [b["Name"] for b in conn.s3.list_buckets()["Buckets"]]
    assert aws.teardown(settings, lambda _: None, aws=conn) == []  # again: nothing to do


# --- launch and terminate ------------------------------------------------------------


def test_a_five_node_launch_is_one_run_instances_call_tagged_and_imdsv2_only(settings, calls):
    made = aws.bootstrap(settings, lambda _: None, aws=calls.aws)
    calls.made.clear()
    before = datetime.datetime.now(datetime.timezone.utc)
    launched = aws.launch(settings, "run-5", 5, SCRIPT, aws=calls.aws)
    assert calls.made["RunInstances"] == 1
    assert calls.changing() == {"RunInstances": 1}
    # moto associates the instance profile with the first instance only: check the request
    [sent] = calls.launches
    assert (sent["MinCount"], sent["MaxCount"]) == (5, 5) and "KeyName" not in sent
    assert sent["IamInstanceProfile"] == {"Name": made.instance_profile}
    assert sent["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert len(sent["ClientToken"]) <= 64  # a botocore retry cannot launch twice
    assert len(launched) == 5 and len({i.id for i in launched}) == 5
    assert all(i.private_address.startswith("10.213.") for i in launched)
    ec2 = calls.aws.ec2
    described = instances_of(ec2, "run-5")
    assert sorted(i["InstanceId"] for i in described) == sorted(i.id for i in launched)
    for item in described:
        tags = tags_of(item)
        assert tags["composer:run"] == "run-5" and tags["composer:bootstrap"] == "composer"
        expires = datetime.datetime.strptime(tags["composer:expires"], "%Y-%m-%dT%H:%M:%SZ")
        hours = (expires.replace(tzinfo=datetime.timezone.utc) - before).total_seconds() / 3600
        assert 3.99 < hours <= 4.0
        assert tags["composer:pid"] == str(os.getpid())
        assert tags["composer:host"]
        assert item["MetadataOptions"]["HttpTokens"] == "required"
        assert item["MetadataOptions"]["HttpEndpoint"] == "enabled"
        assert "KeyName" not in item
        assert (item["SubnetId"], item["ImageId"], item["InstanceType"]) == (
            made.subnet, AMI, "t3.small")
        assert [g["GroupId"] for g in item["SecurityGroups"]] == [made.security_group]
        shutdown = ec2.describe_instance_attribute(
            InstanceId=item["InstanceId"], Attribute="instanceInitiatedShutdownBehavior")
        assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    data = ec2.describe_instance_attribute(InstanceId=launched[0].id, Attribute="userData")
    script = base64.b64decode(data["UserData"]["Value"]).decode()
    assert script.startswith("#!/bin/sh\nshutdown -P +240 ") and script.endswith("echo agent\n")
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:composer:run", "Values": ["run-5"]}])
    assert len(volumes["Volumes"]) == 5


def test_a_count_above_the_cap_is_refused_before_any_call(settings, calls):
    with pytest.raises(ConfigError, match="17 instances: a run may launch 1 to 16"):
        aws.launch(settings, "too-big", 17, SCRIPT, aws=calls.aws)
    assert sum(calls.made.values()) == 0
    small = aws.load({"region": REGION, "max_instances": 2})
    with pytest.raises(ConfigError, match="1 to 2"):
        aws.launch(small, "too-big", 3, SCRIPT, aws=calls.aws)
    assert sum(calls.made.values()) == 0


def test_launch_without_a_bootstrap_says_to_run_it(settings):
    with pytest.raises(ConfigError, match="run composer aws bootstrap --region eu-west-1"):
        aws.launch(settings, "r", 1, SCRIPT)


def test_the_ami_may_be_an_ssm_parameter(moto):
    settings = aws.load({"region": REGION, "ami": "/composer-test/ami"})
    conn = aws.connect(settings)
    aws.bootstrap(settings, lambda _: None, aws=conn)
    conn.ssm.put_parameter(Name="/composer-test/ami", Value="ami-0badc0de", Type="String")
    launched = aws.launch(settings, "ssm", 1, SCRIPT, aws=conn)
    assert instances_of(conn.ec2, "ssm")[0]["ImageId"] == "ami-0badc0de" and launched
    debian = aws.load({"region": REGION})  # moto does not serve AWS's public parameters
    with pytest.raises(ConfigError, match="no such SSM parameter in eu-west-1"):
        aws.launch(debian, "debian", 1, SCRIPT, aws=conn)


def _not_found_first(conn: aws.Aws, times: int) -> list[str]:
    """Make the next ``times`` DescribeInstances answer InvalidInstanceID.NotFound, as
    EC2 may just after RunInstances; return the list the calls are noted in."""
    seen: list[str] = []

    class Response:
        status_code = 400

    def answer(**_):
        seen.append("DescribeInstances")
        if len(seen) <= times:
            return Response(), {"Error": {"Code": "InvalidInstanceID.NotFound",
                                          "Message": "The instance ID does not exist"},
                                "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    conn.ec2.meta.events.register("before-call.ec2.DescribeInstances", answer)
    return seen


def test_waiting_for_running_tolerates_new_ids_being_unknown_a_while(settings):
    conn = aws.connect(settings)
    aws.bootstrap(settings, lambda _: None, aws=conn)
    seen = _not_found_first(conn, 3)
    launched = aws.launch(settings, "eventual", 2, SCRIPT, aws=conn, poll=0.01)
    assert len(launched) == 2 and len(seen) == 4


def test_ids_unknown_for_too_long_fail_the_launch_and_terminate_it(settings):
    conn = aws.connect(settings)
    aws.bootstrap(settings, lambda _: None, aws=conn)
    _not_found_first(conn, 1000)
    with pytest.raises(InfraError, match="InvalidInstanceID.NotFound"):
        aws.launch(settings, "lost", 2, SCRIPT, aws=conn, poll=0.01)
    states = {i["State"]["Name"] for i in instances_of(aws.connect(settings).ec2, "lost")}
    assert states <= {"shutting-down", "terminated"} and states


def test_a_new_instance_profile_not_yet_visible_is_waited_for(settings, calls):
    aws.bootstrap(settings, lambda _: None, aws=calls.aws)
    refusals = []

    class Response:
        status_code = 400

    def refuse_once(**_):  # what EC2 says in the seconds after IAM made the profile
        if not refusals:
            refusals.append(1)
            return Response(), {"Error": {"Code": "InvalidParameterValue", "Message": (
                "Value (composer-composer-node) for parameter iamInstanceProfile.name is "
                "invalid. Invalid IAM Instance Profile name")},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    calls.aws.ec2.meta.events.register("before-call.ec2.RunInstances", refuse_once)
    calls.made.clear()
    launched = aws.launch(settings, "profile", 3, SCRIPT, aws=calls.aws, poll=0.01)
    assert len(launched) == 3 and calls.made["RunInstances"] == 2
    tokens = [sent["ClientToken"] for sent in calls.launches]
    assert len(set(tokens)) == 2, "each attempt carries its own client token"
    assert len(instances_of(calls.aws.ec2, "profile")) == 3


def test_terminate_ends_one_run_and_leaves_the_others(settings):
    conn = aws.connect(settings)
    aws.bootstrap(settings, lambda _: None, aws=conn)
    ended = aws.launch(settings, "ending", 3, SCRIPT, aws=conn)
    kept = aws.launch(settings, "kept", 1, SCRIPT, aws=conn)
    ids = aws.terminate(settings, "ending", aws=conn, poll=0.05)
    assert sorted(ids) == sorted(i.id for i in ended)
    assert {i["State"]["Name"] for i in instances_of(conn.ec2, "ending")} <= {
        "shutting-down", "terminated"}
    assert [i["State"]["Name"] for i in instances_of(conn.ec2, "kept")] == ["running"]
    assert [t.id for t in aws.composer_instances(conn)] == [kept[0].id]
    assert aws.terminate(settings, "ending", aws=conn) == []


def test_launching_a_hundred_nodes_is_one_call(moto, capsys):
    settings = aws.load({"region": REGION, "ami": AMI, "max_instances": 100})
    calls = Calls(settings)
    aws.bootstrap(settings, lambda _: None, aws=calls.aws)
    calls.made.clear()
    started = time.perf_counter()
    launched = aws.launch(settings, "hundred", 100, SCRIPT, aws=calls.aws)
    took = time.perf_counter() - started
    assert len(launched) == 100 and calls.made["RunInstances"] == 1
    with capsys.disabled():
        print(f"\nlaunch of 100 nodes against moto: {took:.2f}s of composer's side, "
              f"{sum(calls.made.values())} AWS calls ({dict(calls.made)})")


# --- gc ------------------------------------------------------------------------------


def _retag(conn: aws.Aws, ids: list[str], **tags: str) -> None:
    conn.ec2.create_tags(Resources=ids, Tags=[{"Key": f"composer:{k}", "Value": v}
                                              for k, v in tags.items()])


def test_gc_terminates_dead_runs_and_leaves_live_ones(settings):
    conn = aws.connect(settings)
    aws.bootstrap(settings, lambda _: None, aws=conn)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runs = {name: [i.id for i in aws.launch(settings, name, 2, SCRIPT, aws=conn)]
            for name in ("expired", "orphaned", "live", "elsewhere")}
    _retag(conn, runs["expired"], expires="2020-01-01T00:00:00Z")
    _retag(conn, runs["orphaned"], pid=str(gone.pid))
    _retag(conn, runs["elsewhere"], host="another-machine", pid=str(gone.pid))
    removed = aws.collect(settings, aws=conn)
    assert len(removed) == 4
    assert sum("of run expired: expired at 2020-01-01T00:00:00Z" in r for r in removed) == 2
    assert sum(f"of run orphaned: its composer (pid {gone.pid} on" in r for r in removed) == 2
    for name, ended in (("expired", True), ("orphaned", True), ("live", False),
                        ("elsewhere", False)):
        states = {i["State"]["Name"] for i in instances_of(conn.ec2, name)}
        assert states <= ({"shutting-down", "terminated"} if ended else {"running"}), name
    assert aws.collect(settings, aws=conn) == []
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=5)
    assert len(aws.collect(settings, aws=conn, now=later)) == 4  # live and elsewhere expire


# --- cost ----------------------------------------------------------------------------


def test_the_cost_is_estimated_from_the_table_or_said_to_be_unknown():
    said = aws.estimate_cost(aws.AwsSettings(), 5, 4)
    # (0.0208 for the instance + 0.005 for its public IPv4 address) x 5 x 4 = 0.516
    assert said.startswith("5 x t3.small for 4 h: about $0.52 ($0.0208/h each and $0.005/h")
    assert "approximate" in said and "us-east-1" in said
    capped = aws.estimate_cost(aws.AwsSettings(max_hours=1), 5, 4)  # they power off at 1 h
    assert capped.startswith("5 x t3.small for 1 h: about $0.13")
    unknown = aws.estimate_cost(aws.AwsSettings(instance_type="x9z.huge"), 5, 4)
    assert "no price known for x9z.huge" in unknown and "$" not in unknown


# --- the command line ----------------------------------------------------------------


def test_the_aws_commands_and_gc(moto):
    status = composer_cli("aws", "status", "--region", REGION)
    assert status.returncode == 0, status.stderr
    assert "not bootstrapped: run composer aws bootstrap" in status.stdout
    made = composer_cli("aws", "bootstrap", "--region", REGION, "--name", "cli")
    assert made.returncode == 0, made.stderr
    assert "created vpc vpc-" in made.stdout and "bootstrap 'cli' ready" in made.stdout
    again = composer_cli("aws", "bootstrap", "--region", REGION, "--name", "cli")
    assert again.returncode == 0 and "created" not in again.stdout
    assert "found vpc vpc-" in again.stdout
    settings = aws.load({"region": REGION, "name": "cli", "ami": AMI})
    aws.launch(settings, "cli-run", 1, SCRIPT)
    refused = composer_cli("aws", "teardown", "--region", REGION, "--name", "cli")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "run cli-run (1 instance)" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = composer_cli("aws", "status", "--region", REGION, "--name", "cli")
    assert "run cli-run: i-" in listed.stdout and "running" in listed.stdout
    conn = aws.connect(settings)
    _retag(conn, [t.id for t in aws.composer_instances(conn)], expires="2020-01-01T00:00:00Z")
    gc = composer_cli("gc", "--cluster", "aws", "--region", REGION)
    assert gc.returncode == 0, gc.stderr
    assert "removed aws instance i-" in gc.stdout and "1 leftover(s) removed" in gc.stdout
    assert "nothing to remove" in composer_cli("gc", "--cluster", "aws", "--region",
                                               REGION).stdout
    gone = composer_cli("aws", "teardown", "--region", REGION, "--name", "cli")
    assert gone.returncode == 0, gone.stderr
    assert "removed vpc vpc-" in gone.stdout and "8 resource(s) removed" in gone.stdout


def test_cli_errors_are_one_line_with_the_right_exit_code(moto, tmp_path):
    no_credentials = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = composer_cli("aws", "status", "--region", REGION, env=no_credentials)
    assert result.returncode == 3
    assert result.stderr.startswith("composer: error: boto3 found no AWS credentials: set "
                                    "AWS_PROFILE")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    gc = composer_cli("gc", "--cluster", "aws", "--region", REGION, env=no_credentials)
    assert gc.returncode == 3 and "no AWS credentials" in gc.stderr
    bad = composer_cli("aws", "status", "--region", "mars")
    assert bad.returncode == 2 and "region='mars'" in bad.stderr
    no_region = composer_cli("aws", "status")
    assert no_region.returncode == 2 and "no AWS region: give --region" in no_region.stderr
    usage = composer_cli("aws", "launch")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    stray = composer_cli("gc", "--region", REGION)
    assert stray.returncode == 2 and "--region is for --cluster aws" in stray.stderr


def test_a_run_without_a_bootstrap_says_to_make_one_and_launches_nothing(moto, tmp_path,
                                                                         monkeypatch, capsys):
    from composer.cli import main

    monkeypatch.setenv("COMPOSER_AWS_REGION", REGION)
    monkeypatch.setenv("COMPOSER_AWS_AMI", AMI)
    project = tmp_path / "kv"
    subprocess.run(["cp", "-r", str(REPO / "examples" / "kvstore"), str(project)], check=True)
    assert main(["run", str(project), "--cluster", "aws"]) == 2
    err = capsys.readouterr().err
    assert "no bucket of bootstrap 'composer' in eu-west-1: run composer aws bootstrap" in err
    assert "cleanup" not in err
    assert not aws.composer_instances(aws.connect(aws.load()), states=("pending", "running",
                                                                        "terminated"))
