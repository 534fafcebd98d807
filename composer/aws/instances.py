"""Launching and terminating a run's EC2 instances, and finding them again by their tags.

Imports ``composer.aws.{settings,session,resources}`` and ``composer.errors``. A run's
instances come from ONE ``RunInstances`` call (MinCount = MaxCount = count: all or
nothing), key-less, IMDSv2 only, terminated (not stopped) when they power off, and
tagged so that ``gc`` can always tell whose they are and when they expire:

- ``composer:run``: the run id; ``composer:bootstrap``: the bootstrap's name;
- ``composer:expires``: UTC ISO-8601, launch + ``max_hours``; the instance also powers
  itself off then (a line composer adds to the user data), so even a run nobody collects
  cannot outlive its expiry by much;
- ``composer:host`` and ``composer:pid``: the machine and process that launched it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import time
import uuid

from composer.aws import resources
from composer.aws.session import Aws, aws_errors, connect, error_code
from composer.aws.settings import AwsSettings
from composer.errors import ConfigError, InfraError

__all__ = ["Instance", "Tagged", "launch", "terminate", "composer_instances", "terminate_ids",
           "RUN_TAG", "EXPIRES_TAG", "HOST_TAG", "PID_TAG", "LIVE_STATES"]

RUN_TAG = "composer:run"
EXPIRES_TAG = "composer:expires"
HOST_TAG = "composer:host"
PID_TAG = "composer:pid"
#: states in which an instance may still cost money or hold the bootstrap's network
LIVE_STATES = ("pending", "running", "stopping", "stopped")
_GONE = ("shutting-down", "terminated")
#: user data beyond this (before base64) is refused by EC2
_USER_DATA_LIMIT = 16384
#: how often a new instance id may be unknown to DescribeInstances (eventual consistency)
_NOT_FOUND_RETRIES = 10
#: how often RunInstances is tried again while a new instance profile is not visible
_PROFILE_RETRIES = 6


@dataclasses.dataclass(frozen=True)
class Instance:
    """A running instance of a run: its id and where to reach it."""

    id: str
    #: the address other nodes of the run reach it on (inside the VPC)
    private_address: str | None
    #: the address composer reaches its agent on from outside (None without one)
    public_address: str | None = None


@dataclasses.dataclass(frozen=True)
class Tagged:
    """An instance composer launched, as its tags and state describe it."""

    id: str
    state: str
    run: str
    #: None when the tag is missing or unreadable
    expires: datetime.datetime | None
    host: str | None
    pid: int | None


def launch(settings: AwsSettings, run_id: str, count: int, user_data: str, *,
           aws: Aws | None = None, poll: float = 2.0, timeout: float = 600.0) -> list[Instance]:
    """Launch ``count`` instances for ``run_id`` in one ``RunInstances`` call; wait until
    all run; return them in launch order. Anything launched is terminated again when
    waiting fails or is interrupted."""
    if not 1 <= count <= settings.max_instances:
        raise ConfigError(f"{count} instances: a run may launch 1 to {settings.max_instances} "
                          "(the cap max_instances, so a mistake cannot run up a bill); raise "
                          "it with COMPOSER_AWS_MAX_INSTANCES if you mean it")
    if not run_id or len(run_id) > 128:
        raise ConfigError(f"run id {run_id!r}: 1 to 128 characters (it is a tag value)")
    user_data = _with_expiry(user_data, settings.max_hours)
    with aws_errors():
        aws = aws or connect(settings)
        subnet, group, profile = _network(aws, settings)
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            hours=settings.max_hours)
        tags = [{"Key": RUN_TAG, "Value": run_id}, {"Key": resources.TAG, "Value": settings.name},
                {"Key": EXPIRES_TAG, "Value": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
                {"Key": HOST_TAG, "Value": socket.gethostname()},
                {"Key": PID_TAG, "Value": str(os.getpid())},
                {"Key": "Name", "Value": f"composer {run_id}"}]
        reply = _run_instances(aws, poll, dict(
            ImageId=_image(aws, settings.ami), InstanceType=settings.instance_type,
            MinCount=count, MaxCount=count, UserData=user_data,
            SubnetId=subnet, SecurityGroupIds=[group], IamInstanceProfile={"Name": profile},
            InstanceInitiatedShutdownBehavior="terminate",
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags},
                               {"ResourceType": "volume", "Tags": tags}]))
        ids = [i["InstanceId"] for i in reply["Instances"]]
    try:
        with aws_errors():
            found = _wait_running(aws, ids, poll, timeout)
    except BaseException:
        try:
            with aws_errors():
                terminate_ids(aws, ids, poll=poll, timeout=0)
        except Exception:  # the error that got us here matters more; gc finds the rest
            pass
        raise
    return [found[i] for i in ids]


def terminate(settings: AwsSettings, run_id: str, *, aws: Aws | None = None,
              poll: float = 2.0, timeout: float = 300.0) -> list[str]:
    """Terminate every instance tagged with ``run_id``; wait until each is shutting down
    or terminated; return their ids."""
    with aws_errors():
        aws = aws or connect(settings)
        ids = [t.id for t in composer_instances(aws, run=run_id)]
        terminate_ids(aws, ids, poll=poll, timeout=timeout)
    return ids


def composer_instances(aws: Aws, run: str | None = None,
                       states: tuple[str, ...] = LIVE_STATES) -> list[Tagged]:
    """Return composer's instances (of ``run``, else of every run) in ``states``."""
    filters = [{"Name": "instance-state-name", "Values": list(states)},
               ({"Name": f"tag:{RUN_TAG}", "Values": [run]} if run
                else {"Name": "tag-key", "Values": [RUN_TAG]})]
    found = []
    for page in aws.ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for item in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                found.append(Tagged(item["InstanceId"], item["State"]["Name"], tags[RUN_TAG],
                                    _when(tags.get(EXPIRES_TAG)), tags.get(HOST_TAG),
                                    _number(tags.get(PID_TAG))))
    return sorted(found, key=lambda t: (t.run, t.id))


def terminate_ids(aws: Aws, ids: list[str], *, poll: float = 2.0,
                  timeout: float = 300.0) -> None:
    """Terminate ``ids``; wait (up to ``timeout`` s) until none is still live."""
    for start in range(0, len(ids), 500):
        try:
            aws.ec2.terminate_instances(InstanceIds=ids[start:start + 500])
        except Exception as exc:
            if error_code(exc) != "InvalidInstanceID.NotFound":
                raise
    left, deadline = list(ids), time.monotonic() + timeout
    while left and timeout > 0:
        states = _states(aws, left)
        left = [i for i in left if states.get(i, "terminated") not in _GONE]
        if not left:
            return
        if time.monotonic() >= deadline:
            raise InfraError(f"instance(s) {', '.join(left[:5])} still not shutting down "
                             f"after {timeout:g}s; look at them in the EC2 console")
        time.sleep(poll)


def _run_instances(aws: Aws, poll: float, request: dict) -> dict:
    """Call RunInstances once, with a client token so that botocore retrying a call that
    timed out cannot launch twice; again only while EC2 does not see a new instance
    profile yet (IAM is eventually consistent: seconds after a bootstrap), which
    launched nothing."""
    attempt = 0
    while True:
        try:
            return aws.ec2.run_instances(ClientToken=uuid.uuid4().hex, **request)
        except Exception as exc:
            message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
            if (error_code(exc) != "InvalidParameterValue" or "iamInstanceProfile" not in message
                    or attempt >= _PROFILE_RETRIES):
                raise
        attempt += 1
        time.sleep(poll * 2.5)


def _states(aws: Aws, ids: list[str]) -> dict[str, str]:
    reply = aws.ec2.describe_instances(InstanceIds=ids)
    return {i["InstanceId"]: i["State"]["Name"]
            for r in reply["Reservations"] for i in r["Instances"]}


def _wait_running(aws: Aws, ids: list[str], poll: float, timeout: float) -> dict[str, Instance]:
    """Wait until every instance of ``ids`` runs; tolerate new ids being unknown a while."""
    deadline = time.monotonic() + timeout
    unknown = 0
    while True:
        try:
            reply = aws.ec2.describe_instances(InstanceIds=ids)
        except Exception as exc:
            if error_code(exc) != "InvalidInstanceID.NotFound" or unknown >= _NOT_FOUND_RETRIES:
                raise
            unknown += 1
            time.sleep(poll)
            continue
        items = [i for r in reply["Reservations"] for i in r["Instances"]]
        for item in items:
            if item["State"]["Name"] in _GONE:
                reason = item.get("StateReason", {}).get("Message", "no reason given")
                raise InfraError(f"instance {item['InstanceId']} went {item['State']['Name']} "
                                 f"while starting: {reason}")
        if len(items) == len(ids) and all(i["State"]["Name"] == "running" for i in items):
            return {i["InstanceId"]: Instance(i["InstanceId"], i.get("PrivateIpAddress"),
                                              i.get("PublicIpAddress")) for i in items}
        if time.monotonic() > deadline:
            raise InfraError(f"{len(ids)} instance(s) not running after {timeout:g}s; "
                             "they were terminated")
        time.sleep(poll)


def _network(aws: Aws, settings: AwsSettings) -> tuple[str, str, str]:
    """Return (subnet, security group, instance profile): the settings', else the
    bootstrap's; ``ConfigError`` if neither has one."""
    subnet, group, profile = settings.subnet, settings.security_group, settings.instance_profile
    if not (subnet and group and profile):
        have = resources.find(aws, settings.name, launching=True)
        subnet, group = subnet or have.subnet, group or have.security_group
        profile = profile or have.instance_profile
        if not (subnet and group and profile):
            missing = [k for k, v in (("subnet", subnet), ("security group", group),
                                      ("instance profile", profile)) if not v]
            raise ConfigError(f"no {', '.join(missing)} of bootstrap {settings.name!r} in "
                              f"{aws.region}: run composer aws bootstrap --region {aws.region} "
                              f"--name {settings.name} first, or set COMPOSER_AWS_SUBNET, "
                              "COMPOSER_AWS_SECURITY_GROUP and COMPOSER_AWS_INSTANCE_PROFILE")
    return subnet, group, profile


def _image(aws: Aws, ami: str) -> str:
    """Return ``ami``, or the AMI id its SSM parameter names."""
    if ami.startswith("ami-"):
        return ami
    try:
        return aws.ssm.get_parameter(Name=ami)["Parameter"]["Value"]
    except Exception as exc:
        if error_code(exc) == "ParameterNotFound":
            raise ConfigError(f"aws ami={ami!r}: no such SSM parameter in {aws.region}; give "
                              "an AMI id with COMPOSER_AWS_AMI=ami-...") from None
        raise


def _with_expiry(user_data: str, hours: float) -> str:
    """Return the shell script ``user_data`` with a power-off at expiry after its first
    line; ``ConfigError`` when it is not a shell script or too large."""
    first, _, rest = (user_data or "#!/bin/sh\n").partition("\n")
    if not first.startswith("#!") or not first.rstrip().endswith(("sh", "bash")):
        raise ConfigError("user data must be a shell script (#!/bin/sh or #!/bin/bash), so "
                          "composer can add the power-off at the run's expiry")
    minutes = max(1, round(hours * 60))
    guard = (f"shutdown -P +{minutes} 'composer: the run expired' || "
             f"(sleep {minutes * 60} && poweroff) &")
    script = f"{first}\n{guard}\n{rest}"
    if len(script.encode()) > _USER_DATA_LIMIT:
        raise ConfigError(f"user data of {len(script.encode())} bytes: EC2 takes at most "
                          f"{_USER_DATA_LIMIT}; fetch the rest from the bucket instead")
    return script


def _when(text: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
