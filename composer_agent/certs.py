"""A certificate authority per run and short-lived certificates.

Imports ``composer_agent.tls``, the standard library and ``cryptography`` (only the composer and
``composer-agent certs`` need it: an agent serving starts faster without). The composer creates one CA per
run, issues a server certificate per node (its addresses in the SubjectAltName) and one
client certificate for itself; the agent accepts only clients with a certificate from
that CA, and the client accepts only an agent whose certificate from that CA names the
address it dialled. Keys are ECDSA P-256 (fast to make) and written with mode 0600.
Certificates are short-lived (24 h by default) and backdated a few minutes so a node
whose clock is slightly behind still accepts them.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from composer_agent.tls import Credentials, client_context, server_context

__all__ = ["Credentials", "Authority", "server_context", "client_context"]

_BACKDATE = datetime.timedelta(minutes=5)
_CA_CERT = "ca.pem"
_CA_KEY = "ca.key"


@dataclasses.dataclass(frozen=True)
class Authority:
    """The run's certificate authority: ``ca.pem`` and ``ca.key`` in one directory."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path, *, hours: float = 24,
               name: str = "composer run CA") -> Authority:
        """Make a new CA in ``directory`` (created if missing), valid for ``hours``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = key.public_key()
        builder = (
            _validity(x509.CertificateBuilder(), hours)
            .subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signer=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        authority = cls(directory / _CA_CERT, directory / _CA_KEY)
        _write_key(authority.key, key)
        _write_cert(authority.cert, builder.sign(key, hashes.SHA256()))
        return authority

    @classmethod
    def load(cls, directory: Path) -> Authority:
        """Return the CA that ``create`` wrote in ``directory``; raise FileNotFoundError
        naming the missing file otherwise."""
        authority = cls(Path(directory) / _CA_CERT, Path(directory) / _CA_KEY)
        for path in (authority.cert, authority.key):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no CA here (make one with Authority.create)")
        return authority

    def issue(self, directory: Path, name: str, *, server: bool, hosts: Sequence[str] = (),
              hours: float = 24) -> Credentials:
        """Write ``<name>.pem`` and ``<name>.key`` in ``directory``, signed by this CA.

        ``hosts`` (DNS names and IP addresses) go into the SubjectAltName: a client checks
        that the address it dialled is among them, so a server certificate needs them.
        """
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"name={name!r}: use a plain file stem such as 'server'")
        if server and not hosts:
            raise ValueError("a server certificate needs hosts= (the addresses clients dial)")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _validity(x509.CertificateBuilder(), hours)
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signer=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
        credentials = Credentials(self.cert, directory / f"{name}.pem",
                                  directory / f"{name}.key")
        _write_key(credentials.key, key)
        signed = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        _write_cert(credentials.cert, signed)
        return credentials


def _validity(builder: x509.CertificateBuilder, hours: float) -> x509.CertificateBuilder:
    if hours <= 0:
        raise ValueError(f"hours={hours!r}: a certificate must be valid for some time")
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - _BACKDATE).not_valid_after(
        now + datetime.timedelta(hours=hours))


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signer, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=signer, crl_sign=signer,
        encipher_only=False, decipher_only=False)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write ``key`` readable by its owner only, from the first byte on."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.unlink(missing_ok=True)  # O_CREAT keeps the mode of a file that already exists
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
