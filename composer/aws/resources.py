"""The account resources a bootstrap owns, found by their tag, and how each one is made.

Imports ``composer.aws.session`` and ``composer.errors``. Everything carries the tag
``composer:bootstrap=<name>`` (IAM and S3 resources also have a name derived from it),
so finding comes before creating and a second bootstrap makes nothing. Used by
``bootstrap`` (make, show, remove) and ``instances`` (where to launch).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from composer.aws.session import Aws, error_code
from composer.errors import ConfigError

__all__ = ["TAG", "VPC_CIDR", "SUBNET_CIDR", "AGENT_PORT", "Resources", "find", "ensure",
           "role_name", "bucket_name"]

#: the tag on everything a bootstrap made; its value is the bootstrap's name
TAG = "composer:bootstrap"
VPC_CIDR = "10.213.0.0/16"
SUBNET_CIDR = "10.213.0.0/20"
#: the agent's mutual-TLS port, open to the internet (the run's CA guards it)
AGENT_PORT = 7800
_ASSUME_EC2 = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


@dataclasses.dataclass
class Resources:
    """The ids (names for IAM and S3) of a bootstrap's resources; None where missing."""

    vpc: str | None = None
    internet_gateway: str | None = None
    subnet: str | None = None
    route_table: str | None = None
    security_group: str | None = None
    role: str | None = None
    instance_profile: str | None = None
    bucket: str | None = None

    def items(self) -> list[tuple[str, str | None]]:
        """Return (kind, id) pairs in the order bootstrap makes them."""
        return [("IAM role" if f.name == "role" else f.name.replace("_", " "),
                 getattr(self, f.name)) for f in dataclasses.fields(self)]

    def missing(self) -> list[str]:
        return [kind for kind, value in self.items() if value is None]


def role_name(name: str) -> str:
    """Return the IAM role (and instance profile) name of bootstrap ``name``."""
    return f"composer-{name}-node"


def bucket_name(aws: Aws, name: str, bucket: str | None = None) -> str:
    """Return ``bucket``, or the default: unique per account and region, as S3 needs."""
    return bucket or f"composer-{name}-{aws.account()}-{aws.region}"


def _tags(name: str, kind: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": TAG, "Value": name},
                                            {"Key": "Name", "Value": f"composer-{name}"}]}]


def _first(items: list[dict], key: str) -> str | None:
    return sorted(item[key] for item in items)[0] if items else None


def find(aws: Aws, name: str, bucket: str | None = None, *,
         launching: bool = False) -> Resources:
    """Return which of bootstrap ``name``'s resources exist (read-only calls only);
    ``launching``: only what a launch needs (subnet, security group, instance profile)."""
    ec2 = aws.ec2
    tagged = [{"Name": f"tag:{TAG}", "Values": [name]}]
    found = Resources()
    found.vpc = _first(ec2.describe_vpcs(Filters=tagged)["Vpcs"], "VpcId")
    if found.vpc:
        inside = tagged + [{"Name": "vpc-id", "Values": [found.vpc]}]
        found.subnet = _first(ec2.describe_subnets(Filters=inside)["Subnets"], "SubnetId")
        groups = ec2.describe_security_groups(Filters=inside)["SecurityGroups"]
        found.security_group = _first(groups, "GroupId")
    found.instance_profile = role_name(name) if _iam_tagged(aws, "profile", name) else None
    if launching:
        return found
    gateways = ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]
    found.internet_gateway = _first(gateways, "InternetGatewayId")
    if found.vpc:
        found.route_table = _first(ec2.describe_route_tables(Filters=inside)["RouteTables"],
                                   "RouteTableId")
    found.role = role_name(name) if _iam_tagged(aws, "role", name) else None
    bucket = bucket_name(aws, name, bucket)
    found.bucket = bucket if _bucket_tagged(aws, bucket, name) else None
    return found


def _iam_tagged(aws: Aws, kind: str, name: str) -> bool:
    """Whether the role or profile of ``name`` exists; ``ConfigError`` if it is not ours."""
    try:
        if kind == "role":
            item = aws.iam.get_role(RoleName=role_name(name))["Role"]
        else:
            item = aws.iam.get_instance_profile(
                InstanceProfileName=role_name(name))["InstanceProfile"]
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise
    if {"Key": TAG, "Value": name} not in item.get("Tags", []):
        raise ConfigError(f"IAM {kind} {role_name(name)} exists but is not tagged {TAG}={name}: "
                          "it is not this bootstrap's; choose another --name")
    return True


def _bucket_tagged(aws: Aws, bucket: str, name: str) -> bool:
    """Whether ``bucket`` exists; ``ConfigError`` if it is someone else's."""
    try:
        aws.s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        if error_code(exc) in ("403", "AccessDenied"):
            raise ConfigError(f"S3 bucket {bucket} belongs to another account; set "
                              "COMPOSER_AWS_BUCKET to a name of your own") from None
        raise
    try:
        tags = aws.s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except Exception as exc:
        if error_code(exc) != "NoSuchTagSet":
            raise
        tags = []
    if {"Key": TAG, "Value": name} not in tags:
        raise ConfigError(f"S3 bucket {bucket} exists but is not tagged {TAG}={name}: set "
                          "COMPOSER_AWS_BUCKET to another name, or choose another --name")
    return True


def ensure(aws: Aws, name: str, bucket: str | None,
           say: Callable[[str], None]) -> Resources:
    """Make whatever of bootstrap ``name`` is missing (and its missing links: gateway
    attachment, route, subnet association, role in profile); return them all."""
    ec2 = aws.ec2
    have = find(aws, name, bucket)

    def report(kind: str, value: str | None, make: Callable[[], str]) -> str:
        if value:
            say(f"found {kind} {value}")
            return value
        value = make()
        say(f"created {kind} {value}")
        return value

    vpc = have.vpc = report("vpc", have.vpc, lambda: _make_vpc(aws, name))
    gateway = have.internet_gateway = report("internet gateway", have.internet_gateway, lambda: (
        ec2.create_internet_gateway(TagSpecifications=_tags(name, "internet-gateway"))
        ["InternetGateway"]["InternetGatewayId"]))
    attached = ec2.describe_internet_gateways(InternetGatewayIds=[gateway])["InternetGateways"]
    if not any(a.get("VpcId") == vpc for a in attached[0].get("Attachments", [])):
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        say(f"attached {gateway} to {vpc}")
    subnet = have.subnet = report("subnet", have.subnet, lambda: _make_subnet(aws, name, vpc))
    table = have.route_table = report("route table", have.route_table, lambda: (
        ec2.create_route_table(VpcId=vpc, TagSpecifications=_tags(name, "route-table"))
        ["RouteTable"]["RouteTableId"]))
    _link_route_table(aws, table, gateway, subnet, say)
    have.security_group = report("security group", have.security_group,
                                 lambda: _make_security_group(aws, name, vpc))
    role = have.role = report("IAM role", have.role, lambda: aws.iam.create_role(
        RoleName=role_name(name), Path="/composer/", AssumeRolePolicyDocument=_ASSUME_EC2,
        Description="composer nodes: no permissions (the agent comes by presigned URL)",
        Tags=[{"Key": TAG, "Value": name}])["Role"]["RoleName"])
    profile = have.instance_profile = report(
        "instance profile", have.instance_profile, lambda: aws.iam.create_instance_profile(
            InstanceProfileName=role_name(name), Path="/composer/",
            Tags=[{"Key": TAG, "Value": name}])["InstanceProfile"]["InstanceProfileName"])
    roles = aws.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
    if not any(r["RoleName"] == role for r in roles):
        aws.iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
        say(f"added role {role} to instance profile {profile}")
    have.bucket = report("bucket", have.bucket,
                         lambda: _make_bucket(aws, name, bucket_name(aws, name, bucket)))
    return have


def _make_vpc(aws: Aws, name: str) -> str:
    vpc = aws.ec2.create_vpc(CidrBlock=VPC_CIDR,
                             TagSpecifications=_tags(name, "vpc"))["Vpc"]["VpcId"]
    aws.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    return vpc


def _make_subnet(aws: Aws, name: str, vpc: str) -> str:
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock=SUBNET_CIDR,
                                   TagSpecifications=_tags(name, "subnet"))["Subnet"]["SubnetId"]
    aws.ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    return subnet


def _link_route_table(aws: Aws, table: str, gateway: str, subnet: str,
                      say: Callable[[str], None]) -> None:
    """Give ``table`` its default route to ``gateway`` and associate it with ``subnet``."""
    found = aws.ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in found.get("Routes", [])):
        aws.ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                             GatewayId=gateway)
        say(f"routed 0.0.0.0/0 of {table} to {gateway}")
    if not any(a.get("SubnetId") == subnet for a in found.get("Associations", [])):
        aws.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        say(f"associated {table} with {subnet}")


def _make_security_group(aws: Aws, name: str, vpc: str) -> str:
    """A group open between its members, and on the agent's port to anyone (mTLS)."""
    group = aws.ec2.create_security_group(
        GroupName=f"composer-{name}", VpcId=vpc,
        Description="composer nodes: all traffic between members; the agent's mTLS port",
        TagSpecifications=_tags(name, "security-group"))["GroupId"]
    aws.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]},
        {"IpProtocol": "tcp", "FromPort": AGENT_PORT, "ToPort": AGENT_PORT,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "composer agent (mutual TLS)"}]},
    ])
    return group


def _make_bucket(aws: Aws, name: str, bucket: str) -> str:
    """A private, unversioned bucket for the agent wheel, tagged."""
    options = ({} if aws.region == "us-east-1"
               else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}})
    aws.s3.create_bucket(Bucket=bucket, **options)
    aws.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    aws.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": TAG, "Value": name}]})
    return bucket
