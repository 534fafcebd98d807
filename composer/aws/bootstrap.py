"""``composer aws bootstrap|status|teardown``: make, show and remove a bootstrap.

Imports ``composer.aws.{resources,instances,session,settings,cost}`` and
``composer.errors``. A bootstrap is the long-lived part of the ``aws`` backend: one VPC
(10.213.0.0/16) with one public subnet, an internet gateway and route table (instances
fetch the agent from S3), a security group (all traffic between members, the agent's
mTLS port from anywhere), an IAM role and instance profile without permissions, and a
bucket for the agent wheel. Runs only launch and terminate instances inside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable

from composer.aws import resources
from composer.aws.cost import estimate_cost
from composer.aws.instances import LIVE_STATES, Tagged, composer_instances
from composer.aws.resources import Resources
from composer.aws.session import Aws, aws_errors, connect, error_code
from composer.aws.settings import AwsSettings
from composer.errors import ConfigError, InfraError

__all__ = ["bootstrap", "status", "teardown", "Status"]


def bootstrap(settings: AwsSettings, say: Callable[[str], None] = print, *,
              aws: Aws | None = None) -> Resources:
    """Make what bootstrap ``settings.name`` lacks in the settings' region, saying what
    was found and what was made; running it again makes nothing."""
    with aws_errors():
        aws = aws or connect(settings)
        say(f"bootstrap {settings.name!r} in {aws.region} ({aws.endpoint()})")
        return resources.ensure(aws, settings.name, settings.bucket, say)


@dataclasses.dataclass
class Status:
    """What exists of a bootstrap, and the live instances of composer runs."""

    name: str
    region: str
    endpoint: str
    resources: Resources
    instances: list[Tagged]
    cost: str

    def lines(self, now: datetime.datetime | None = None) -> list[str]:
        """Return the status as lines for a terminal."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        out = [f"bootstrap {self.name!r} in {self.region} ({self.endpoint})"]
        out += [f"  {kind:<17} {value or 'missing'}" for kind, value in self.resources.items()]
        missing = self.resources.missing()
        if missing and len(missing) < len(self.resources.items()):
            out.append("  incomplete: composer aws bootstrap makes what is missing")
        elif missing:
            out.append("  not bootstrapped: run composer aws bootstrap")
        out.append(f"instances of composer runs: {len(self.instances) or 'none'}")
        for t in self.instances:
            left = "expiry unknown" if t.expires is None else (
                f"expires {t.expires:%Y-%m-%dT%H:%M:%SZ}" + (" (expired)" if t.expires <= now
                                                             else ""))
            where = f", from {t.host} pid {t.pid}" if t.host else ""
            out.append(f"  run {t.run}: {t.id} {t.state}, {left}{where}")
        out.append(f"a run at the caps: {self.cost}")
        return out


def status(settings: AwsSettings, *, aws: Aws | None = None) -> Status:
    """Return what exists of bootstrap ``settings.name`` and every live composer instance
    in the region (read-only)."""
    with aws_errors():
        aws = aws or connect(settings)
        found = resources.find(aws, settings.name, settings.bucket)
        live = composer_instances(aws)
        return Status(settings.name, aws.region, aws.endpoint(), found, live,
                      estimate_cost(settings, settings.max_instances, settings.max_hours))


def teardown(settings: AwsSettings, say: Callable[[str], None] = print, *,
             aws: Aws | None = None, poll: float = 5.0, timeout: float = 600.0) -> list[str]:
    """Remove what bootstrap ``settings.name`` made (the bucket emptied first); refuse
    while instances still run inside it. Return what was removed."""
    with aws_errors():
        aws = aws or connect(settings)
        found = resources.find(aws, settings.name, settings.bucket)
        if found.vpc:
            _refuse_while_running(aws, found.vpc, settings)
            _wait_shut_down(aws, found.vpc, poll, timeout, say)
    removed: list[str] = []
    errors: list[str] = []
    for kind, value, remove in _removals(aws, found):
        try:
            with aws_errors():
                remove()
        except (InfraError, ConfigError) as exc:  # go on: collect every error, as aiohttp does
            errors.append(f"{kind} {value}: {exc}")
            continue
        say(f"removed {kind} {value}")
        removed.append(f"{kind} {value}")
    if errors:
        raise InfraError(f"teardown left {len(errors)} resource(s): {'; '.join(errors)}; "
                         "run composer aws teardown again")
    if not removed:
        say(f"nothing of bootstrap {settings.name!r} in {aws.region}")
    return removed


def _vpc_instances(aws: Aws, vpc: str, states: tuple[str, ...]) -> list[dict]:
    filters = [{"Name": "vpc-id", "Values": [vpc]},
               {"Name": "instance-state-name", "Values": list(states)}]
    return [i for page in aws.ec2.get_paginator("describe_instances").paginate(Filters=filters)
            for r in page["Reservations"] for i in r["Instances"]]


def _refuse_while_running(aws: Aws, vpc: str, settings: AwsSettings) -> None:
    running = _vpc_instances(aws, vpc, LIVE_STATES)
    if not running:
        return
    runs: dict[str, int] = {}
    for item in running:
        tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        run = tags.get("composer:run", f"(not composer's: {item['InstanceId']})")
        runs[run] = runs.get(run, 0) + 1
    listed = ", ".join(f"{run} ({n} instance{'s' if n > 1 else ''})" for run, n in runs.items())
    raise ConfigError(f"bootstrap {settings.name!r} in {aws.region} still has instances "
                      f"running: run {listed}; wait for those runs to end, or terminate them "
                      f"with composer gc --cluster aws --region {aws.region} (dead or "
                      "expired runs), then run composer aws teardown again")


def _wait_shut_down(aws: Aws, vpc: str, poll: float, timeout: float,
                    say: Callable[[str], None]) -> None:
    """Wait until no instance is shutting down in ``vpc`` (they hold its network)."""
    deadline = time.monotonic() + timeout
    said = False
    while ending := _vpc_instances(aws, vpc, ("shutting-down",)):
        if not said:
            say(f"waiting for {len(ending)} instance(s) shutting down")
            said = True
        if time.monotonic() > deadline:
            raise InfraError(f"{len(ending)} instance(s) still shutting down in {vpc} after "
                             f"{timeout:g}s; run composer aws teardown again later")
        time.sleep(poll)


def _removals(aws: Aws, found: Resources) -> list[tuple[str, str, Callable[[], None]]]:
    """Return (kind, id, remove) for what exists, in an order AWS accepts."""
    ec2, iam = aws.ec2, aws.iam
    steps: list[tuple[str, str | None, Callable[[], None]]] = [
        ("instance profile", found.instance_profile,
         lambda: _remove_profile(aws, found.instance_profile)),
        ("IAM role", found.role, lambda: iam.delete_role(RoleName=found.role)),
        ("bucket", found.bucket, lambda: _remove_bucket(aws, found.bucket)),
        ("security group", found.security_group,
         lambda: ec2.delete_security_group(GroupId=found.security_group)),
        ("route table", found.route_table, lambda: _remove_route_table(aws, found.route_table)),
        ("subnet", found.subnet, lambda: ec2.delete_subnet(SubnetId=found.subnet)),
        ("internet gateway", found.internet_gateway,
         lambda: _remove_gateway(aws, found.internet_gateway)),
        ("vpc", found.vpc, lambda: ec2.delete_vpc(VpcId=found.vpc)),
    ]
    return [(kind, value, remove) for kind, value, remove in steps if value]


def _remove_profile(aws: Aws, profile: str) -> None:
    item = aws.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    for role in item.get("Roles", []):
        aws.iam.remove_role_from_instance_profile(InstanceProfileName=profile,
                                                  RoleName=role["RoleName"])
    aws.iam.delete_instance_profile(InstanceProfileName=profile)


def _remove_bucket(aws: Aws, bucket: str) -> None:
    """Empty ``bucket`` (every version, should someone have turned versioning on), then
    delete it."""
    for page in aws.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            aws.s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    aws.s3.delete_bucket(Bucket=bucket)


def _remove_route_table(aws: Aws, table: str) -> None:
    found = aws.ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    for association in found.get("Associations", []):
        if not association.get("Main"):
            aws.ec2.disassociate_route_table(
                AssociationId=association["RouteTableAssociationId"])
    aws.ec2.delete_route_table(RouteTableId=table)


def _remove_gateway(aws: Aws, gateway: str) -> None:
    found = aws.ec2.describe_internet_gateways(InternetGatewayIds=[gateway])["InternetGateways"]
    for attachment in found[0].get("Attachments", []) if found else []:
        try:
            aws.ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=attachment["VpcId"])
        except Exception as exc:
            if error_code(exc) != "Gateway.NotAttached":
                raise
    aws.ec2.delete_internet_gateway(InternetGatewayId=gateway)
