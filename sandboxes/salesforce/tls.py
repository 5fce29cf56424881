"""The Pub/Sub API's TLS: a certificate authority of the sandbox's own and a server certificate
it signs, both made fresh at start-up.

Production Pub/Sub is TLS only ("Pub/Sub API Endpoint": ``api.pubsub.salesforce.com:7443``,
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/pub-sub-endpoints.html), with a
certificate from a public CA that the system roots trust. The sandbox cannot have one, so its
clients trust its CA explicitly: the connector's ``pubsub_ca_file`` setting, which the sandbox
fills with :attr:`Certificates.ca_pem` written to a file. The server certificate names every
host a client may dial (the listener's host, ``localhost``, ``127.0.0.1``, ``::1``), so the
hostname check passes without overrides, as it must against the real endpoint.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Certificates", "issue"]

#: long enough for any run, short enough that a copied file is worth nothing later
VALIDITY = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Certificates:
    #: the CA's certificate (PEM): what a client trusts
    ca_pem: bytes
    #: the server's certificate chain (PEM: its own, then the CA's) and its private key
    chain_pem: bytes
    key_pem: bytes


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Deskstream sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(hosts: Iterable[str], *, now: datetime | None = None) -> Certificates:
    """A new CA and a server certificate for ``hosts`` signed by it (P-256 keys)."""
    start = (now or datetime.now(UTC)) - timedelta(hours=1)  # a little clock skew is fine
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Deskstream sandbox Pub/Sub CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names = _alt_names(hosts)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(str(alt_names[0].value)))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    return Certificates(
        ca_pem=ca_pem,
        chain_pem=server.public_bytes(serialization.Encoding.PEM) + ca_pem,
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
