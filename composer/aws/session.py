"""One connection to an AWS account (``Aws``), and AWS's errors as composer's.

Imports ``composer.errors`` and ``composer.aws.settings``; boto3 only when connecting, so
the rest of composer works without it. Every public function of ``composer.aws`` runs
under ``aws_errors()``: whatever AWS or botocore raises becomes a one-line
``InfraError`` (exit 3) naming the operation and AWS's reason, never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from composer.aws.settings import AwsSettings
from composer.errors import ConfigError, ExitCode, InfraError

__all__ = ["Aws", "connect", "aws_errors", "CredentialsError", "error_code"]

#: error codes meaning the credentials were found but AWS refused them
_REFUSED = {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException",
            "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
            "InvalidAccessKeyId", "RequestExpired"}


class CredentialsError(ConfigError):
    """boto3 found no AWS credentials.

    Cause: none of boto3's sources (environment, ``AWS_PROFILE`` and ~/.aws, SSO, an
    instance role) gave any. Remedy: the message lists them. Exit 3, not 2: the command
    was right, the machine lacks what it needs.
    """

    exit_code = ExitCode.INFRA


@dataclasses.dataclass
class Aws:
    """A boto3 session bound to one region (and endpoint), with its clients made once."""

    session: Any
    region: str
    endpoint_url: str | None = None
    _clients: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _account: str | None = dataclasses.field(default=None, repr=False)

    def client(self, service: str) -> Any:
        """Return this connection's client of ``service`` (made on first use)."""
        if service not in self._clients:
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": 5},
                            connect_timeout=10, read_timeout=60)
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=config)
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    def account(self) -> str:
        """Return the account id the credentials belong to (one STS call, then cached)."""
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    def endpoint(self) -> str:
        """Return where this connection's EC2 calls go (for messages)."""
        return self.ec2.meta.endpoint_url


def connect(settings: AwsSettings) -> Aws:
    """Return a connection for ``settings``; ``ConfigError`` if boto3, the region or the
    credentials are missing, saying how to provide them."""
    try:
        import boto3
    except ImportError:
        raise ConfigError("the aws commands need boto3, which is not installed: "
                          "pip install 'composer-dst[aws]'") from None
    with aws_errors():
        session = boto3.Session(region_name=settings.region)
        region = session.region_name
        if not region:
            raise ConfigError("no AWS region: give --region (e.g. --region eu-west-1), set "
                              "AWS_REGION or COMPOSER_AWS_REGION, or set region in your "
                              "AWS profile (aws configure)")
        if session.get_credentials() is None:
            raise CredentialsError(
                "boto3 found no AWS credentials: set AWS_PROFILE (a profile of ~/.aws/config, "
                "e.g. after aws configure or aws sso login), or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run on a machine with an instance role")
    return Aws(session, region, settings.endpoint_url)


def error_code(exc: BaseException) -> str | None:
    """Return AWS's error code of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions raised inside into ``InfraError``/``ConfigError`` with a
    one-line message; composer's own errors pass through."""
    try:
        import botocore.exceptions as bx
    except ImportError:  # connect() says what to install
        yield
        return
    try:
        yield
    except bx.ClientError as exc:
        code = error_code(exc) or "?"
        message = " ".join((exc.response.get("Error", {}).get("Message", "") or str(exc)).split())
        what = f"AWS refused {exc.operation_name}: {code}: {message}"
        if code in _REFUSED:
            what += ("; the credentials boto3 found were refused: check AWS_PROFILE or "
                     "AWS_ACCESS_KEY_ID, and that they have not expired (aws sso login)")
        elif code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
            what += "; the credentials lack a permission composer needs"
        raise InfraError(what) from None
    except bx.NoCredentialsError:
        raise CredentialsError("boto3 found no AWS credentials: set AWS_PROFILE or "
                               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except bx.ProfileNotFound as exc:
        raise CredentialsError(f"{exc}: set AWS_PROFILE to a profile of ~/.aws/config "
                               "(aws configure list-profiles), or unset it") from None
    except bx.NoRegionError:
        raise ConfigError("no AWS region: give --region or set AWS_REGION") from None
    except (bx.EndpointConnectionError, bx.ConnectionClosedError,
            bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise InfraError(f"cannot reach AWS: {exc}") from None
    except bx.BotoCoreError as exc:
        raise InfraError(f"AWS call failed: {exc}") from None
