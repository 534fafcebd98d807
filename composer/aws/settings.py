"""What composer needs to know to use an AWS account: ``AwsSettings`` and where it comes from.

Imports only ``composer.errors`` and the standard library (boto3 is not needed to read
settings). Each setting comes from, in order: an override (a command-line flag, later an
``[aws]`` table of composer.toml), the environment variable ``COMPOSER_AWS_<KEY>``, then
its default. The region may also come from ``AWS_REGION`` (which the other AWS SDKs
read, boto3 does not) or boto3's own chain (``AWS_DEFAULT_REGION``, the profile's),
resolved when a session is made; so does the
endpoint (``AWS_ENDPOINT_URL``, honoured by boto3 itself since 1.28), which is how the
tests point composer at moto.

Instances are always launched without a key pair: composer reaches them through its
agent, so there is no ``key_name`` setting, and giving one is an error.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

from composer.errors import ConfigError

__all__ = ["AwsSettings", "load", "DEBIAN_12", "ENV_PREFIX", "FIELDS"]

#: the public SSM parameter naming the newest Debian 12 AMI for amd64 in each region
DEBIAN_12 = "/aws/service/debian/release/12/latest/amd64"
#: ``COMPOSER_AWS_INSTANCE_TYPE`` sets ``instance_type``, and so on for every field
ENV_PREFIX = "COMPOSER_AWS_"
#: what a key pair setting might be called: refused, with the reason
KEY_PAIR_NAMES = frozenset({"key_name", "key_pair", "key"})
#: no setting may raise the per-run cap above this, whatever is configured
_CEILING_INSTANCES = 1000
_CEILING_HOURS = 168.0


@dataclasses.dataclass(frozen=True)
class AwsSettings:
    """Where and what composer launches; every field is checked by its ``_validate_<name>``."""

    #: the AWS region, e.g. eu-west-1; default: AWS_REGION, else boto3's
    #: (AWS_DEFAULT_REGION, the profile's region)
    region: str | None = None
    #: the name of a bootstrap (its resources are tagged ``composer:bootstrap=<name>``);
    #: default "composer"
    name: str = "composer"
    #: the EC2 instance type of every node; default t3.small (2 vCPU, 2 GiB)
    instance_type: str = "t3.small"
    #: an AMI id (ami-...) or an SSM parameter path naming one (/...); default Debian 12
    ami: str = DEBIAN_12
    #: a subnet id (subnet-...) to launch into; default: the bootstrap's subnet
    subnet: str | None = None
    #: a security group id (sg-...) for the nodes; default: the bootstrap's group
    security_group: str | None = None
    #: the instance profile name the nodes get; default: the bootstrap's profile
    instance_profile: str | None = None
    #: the S3 bucket holding the agent wheel; default composer-<name>-<account>-<region>
    bucket: str | None = None
    #: most instances one run may launch (a hard cap, refused before any call); default 16
    max_instances: int = 16
    #: hours after launch at which a run's instances count as expired (the
    #: ``composer:expires`` tag) and power themselves off; default 4
    max_hours: float = 4.0
    #: seconds from launch until every instance's agent must answer; default 900
    boot_timeout: float = 900.0
    #: seconds without composer's heartbeat after which an instance powers itself off
    #: (and so terminates): how long a run outlives a dead composer; default 120
    heartbeat_timeout: float = 120.0
    #: how composer reaches the agents: "public" (each instance's public address) or
    #: "private" (composer runs inside the VPC or reaches it over a VPN); default public
    reach: str = "public"
    #: the AWS endpoint; default: boto3's (``AWS_ENDPOINT_URL``, else AWS itself)
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                _VALIDATORS[field.name](value)


def load(overrides: Mapping[str, object] | None = None,
         environ: Mapping[str, str] | None = None) -> AwsSettings:
    """Return the settings: ``overrides`` (flags; None values are unset) over the
    ``COMPOSER_AWS_*`` environment over the defaults; ``ConfigError`` names a bad one."""
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(AwsSettings)}
    values: dict[str, object] = {}
    for key, value in (overrides or {}).items():
        if key in KEY_PAIR_NAMES:
            raise ConfigError(f"aws {key}={value!r}: composer launches instances without a key "
                              "pair and reaches them through its agent; remove the setting")
        if key not in fields:
            raise ConfigError(f"aws {key}={value!r}: unknown setting; known: {', '.join(fields)}")
        if value is not None:
            values[key] = value
    for key, field in fields.items():
        text = environ.get(ENV_PREFIX + key.upper())
        if key in values or not text:
            continue
        values[key] = _from_text(ENV_PREFIX + key.upper(), text, field.type)
    if "region" not in values and environ.get("AWS_REGION"):
        values["region"] = environ["AWS_REGION"]
    if environ.get(ENV_PREFIX + "KEY_NAME"):
        raise ConfigError(f"{ENV_PREFIX}KEY_NAME is set: composer launches instances without a "
                          "key pair and reaches them through its agent; unset it")
    try:
        return AwsSettings(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"aws settings: {exc}") from None


def _from_text(name: str, text: str, kind: object) -> object:
    """Convert an environment variable to its field's type (``kind`` is the annotation)."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: not a number") from None
    return text


def _check(ok: bool, key: str, value: object, why: str) -> None:
    if not ok:
        raise ConfigError(f"aws {key}={value!r}: {why}")


def _validate_region(value: object) -> None:
    _check(isinstance(value, str) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value) is not None,
           "region", value, "not an AWS region name such as eu-west-1 or us-east-1")


def _validate_name(value: object) -> None:
    _check(isinstance(value, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", value) is not None,
           "name", value, "1 to 20 lowercase letters, digits or '-' (it is part of the "
           "bucket's name), starting with a letter or digit")


def _validate_instance_type(value: object) -> None:
    _check(isinstance(value, str) and re.fullmatch(r"[a-z0-9-]+\.[a-z0-9]+", value) is not None,
           "instance_type", value, "not an EC2 instance type such as t3.small")


def _validate_ami(value: object) -> None:
    _check(isinstance(value, str) and (value.startswith("ami-") or value.startswith("/")),
           "ami", value, f"give an AMI id (ami-...) or an SSM parameter path such as {DEBIAN_12}")


def _prefixed(key: str, prefix: str):
    def validate(value: object) -> None:
        _check(isinstance(value, str) and value.startswith(prefix) and len(value) > len(prefix),
               key, value, f"not an id of the form {prefix}...")
    return validate


def _validate_instance_profile(value: object) -> None:
    _check(isinstance(value, str) and re.fullmatch(r"[\w+=,.@-]{1,128}", value) is not None,
           "instance_profile", value, "not an IAM instance profile name")


def _validate_bucket(value: object) -> None:
    _check(isinstance(value, str)
           and re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) is not None,
           "bucket", value, "not an S3 bucket name (3 to 63 lowercase letters, digits, '.', '-')")


def _validate_max_instances(value: object) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool)
           and 1 <= value <= _CEILING_INSTANCES, "max_instances", value,
           f"a whole number from 1 to {_CEILING_INSTANCES}")


def _validate_max_hours(value: object) -> None:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool)
           and 0 < value <= _CEILING_HOURS, "max_hours", value,
           f"hours above 0 and at most {_CEILING_HOURS:g} (a week)")


def _validate_boot_timeout(value: object) -> None:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 3600,
           "boot_timeout", value, "seconds above 0 and at most 3600")


def _validate_heartbeat_timeout(value: object) -> None:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool) and 2 <= value <= 3600,
           "heartbeat_timeout", value, "seconds from 2 to 3600")


def _validate_reach(value: object) -> None:
    _check(value in ("public", "private"), "reach", value,
           "give public (composer dials the instances' public addresses) or private")


def _validate_endpoint_url(value: object) -> None:
    _check(isinstance(value, str) and value.startswith(("http://", "https://")),
           "endpoint_url", value, "not an http:// or https:// URL")


_VALIDATORS = {
    "region": _validate_region, "name": _validate_name,
    "instance_type": _validate_instance_type, "ami": _validate_ami,
    "subnet": _prefixed("subnet", "subnet-"), "security_group": _prefixed("security_group", "sg-"),
    "instance_profile": _validate_instance_profile, "bucket": _validate_bucket,
    "max_instances": _validate_max_instances, "max_hours": _validate_max_hours,
    "boot_timeout": _validate_boot_timeout, "heartbeat_timeout": _validate_heartbeat_timeout,
    "reach": _validate_reach,
    "endpoint_url": _validate_endpoint_url,
}
#: the names of the settings, in the order of ``AwsSettings``
FIELDS = tuple(f.name for f in dataclasses.fields(AwsSettings))
# every field has its validator (a cheap guard, as Hypothesis's _settings.py does)
assert set(_VALIDATORS) == {f.name for f in dataclasses.fields(AwsSettings)}
