"""The run's CA and its certificates, checked by reading them back (no network)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from composer_agent.certs import Authority, client_context, server_context


def _load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_keys_are_private_and_certificates_are_p256(tmp_path):
    authority = Authority.create(tmp_path)
    server = authority.issue(tmp_path / "s", "server", server=True, hosts=["10.0.0.2"])
    for key in (authority.key, server.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for cert in (authority.cert, server.cert):
        assert isinstance(_load(cert).public_key(), ec.EllipticCurvePublicKey)
        assert _load(cert).public_key().curve.name == "secp256r1"


def test_server_certificate_names_its_hosts_and_chains_to_the_ca(tmp_path):
    authority = Authority.create(tmp_path, name="run 42 CA")
    server = authority.issue(tmp_path, "node-a", server=True, hosts=["10.0.0.2", "node-a"])
    cert, ca = _load(server.cert), _load(authority.cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.2")]
    assert names.get_values_for_type(x509.DNSName) == ["node-a"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)  # raises if the signature does not check
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.ca == authority.cert


def test_certificates_are_short_lived_and_backdated(tmp_path):
    authority = Authority.create(tmp_path, hours=2)
    client = authority.issue(tmp_path, "client", server=False, hours=1)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = _load(client.cert)
    assert cert.not_valid_before_utc < now - datetime.timedelta(minutes=1)
    assert cert.not_valid_after_utc < now + datetime.timedelta(hours=1, minutes=1)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_load_finds_the_ca_or_names_what_is_missing(tmp_path):
    made = Authority.create(tmp_path / "ca")
    assert Authority.load(tmp_path / "ca") == made
    with pytest.raises(FileNotFoundError, match="ca.pem"):
        Authority.load(tmp_path / "elsewhere")


def test_bad_requests_are_refused(tmp_path):
    authority = Authority.create(tmp_path)
    with pytest.raises(ValueError, match="hosts="):
        authority.issue(tmp_path, "server", server=True)
    with pytest.raises(ValueError, match="name="):
        authority.issue(tmp_path, "../x", server=False)
    with pytest.raises(ValueError, match="hours="):
        Authority.create(tmp_path / "other", hours=0)


def test_contexts_want_tls13_and_verify_the_peer(tmp_path):
    authority = Authority.create(tmp_path)
    server = server_context(authority.issue(tmp_path, "s", server=True, hosts=["node"]))
    client = client_context(authority.issue(tmp_path, "c", server=False))
    for context in (server, client):
        assert context.minimum_version is ssl.TLSVersion.TLSv1_3
        assert context.verify_mode is ssl.CERT_REQUIRED
    assert client.check_hostname


def test_a_rewritten_key_is_private_too(tmp_path):
    authority = Authority.create(tmp_path)
    authority.key.chmod(0o644)
    again = Authority.create(tmp_path)
    assert stat.S_IMODE(again.key.stat().st_mode) == 0o600
