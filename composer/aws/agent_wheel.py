"""The wheel an instance installs: composer's agent and SDK, named by its content.

Imports only ``composer.aws.session`` and the standard library. The wheel is built here
from the installed packages (``composer_agent``, ``composer_sdk``) without a build tool:
a wheel is a zip with a ``.dist-info`` (PEP 427), and this one is pure Python. Entries
are sorted and dated 1980-01-01, so the same sources make the same bytes; its SHA-256 is
its key in the bucket (``agent/<digest>/<file>``), uploaded once per content and fetched
by instances through a presigned URL that the user data checks against the digest.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import stat
import zipfile
from pathlib import Path

from composer.aws.session import Aws, error_code

__all__ = ["Wheel", "build", "upload", "presign", "PACKAGES", "DISTRIBUTION"]

#: the packages the wheel holds: the agent, and the SDK its nodes' processes import
PACKAGES = ("composer_agent", "composer_sdk")
DISTRIBUTION = "composer_dst_agent"
_DATE = (1980, 1, 1, 0, 0, 0)


@dataclasses.dataclass(frozen=True)
class Wheel:
    """A built wheel: its file name, bytes and SHA-256 (hex)."""

    name: str
    data: bytes
    digest: str

    @property
    def key(self) -> str:
        """Where it lives in the bucket."""
        return f"agent/{self.digest}/{self.name}"


def build(version: str | None = None) -> Wheel:
    """Return the wheel of the installed agent and SDK (the same bytes for the same
    sources and version)."""
    if version is None:
        from composer import __version__ as version
    info = f"{DISTRIBUTION}-{version}.dist-info"
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for package in PACKAGES:
        root = Path(__import__(package).__file__).parent
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts:
                name = f"{package}/{path.relative_to(root).as_posix()}"
                files[name] = path.read_bytes()
                modes[name] = 0o755 if path.stat().st_mode & 0o111 else 0o644
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {DISTRIBUTION.replace('_', '-')}\nVersion: {version}\n"
        "Summary: composer's node agent and SDK\nRequires-Python: >=3.10\n"
        "Requires-Dist: aiohttp>=3.8\n").encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: composer\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{info}/entry_points.txt"] = (b"[console_scripts]\n"
                                         b"composer-agent = composer_agent.cli:main\n")
    record = [f"{name},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}"
              for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, _DATE)
            entry.external_attr = (stat.S_IFREG | modes.get(name, 0o644)) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    data = buffer.getvalue()
    return Wheel(f"{DISTRIBUTION}-{version}-py3-none-any.whl", data,
                 hashlib.sha256(data).hexdigest())


def upload(aws: Aws, bucket: str, wheel: Wheel) -> bool:
    """Put ``wheel`` in ``bucket`` unless it is there already; return whether it was put."""
    try:
        aws.s3.head_object(Bucket=bucket, Key=wheel.key)
        return False
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    aws.s3.put_object(Bucket=bucket, Key=wheel.key, Body=wheel.data,
                      ContentType="application/zip")
    return True


def presign(aws: Aws, bucket: str, key: str, hours: float) -> str:
    """Return a URL that GETs ``key`` without credentials for ``hours`` (at most 7 days,
    S3's limit); the object need not exist yet."""
    seconds = max(60, min(int(hours * 3600), 7 * 24 * 3600))
    return aws.s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=seconds)


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
