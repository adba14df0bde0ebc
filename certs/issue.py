"""Issue the certificates infergate needs: a private CA, serving certificates and client certificates.

Everything is ECDSA P-256: key generation takes microseconds (tests and the local control plane issue many
certificates) and every consumer we have (Go's crypto/tls in the API server and kube-scheduler, Python's ssl,
kubectl) accepts it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PrivateKey = ec.EllipticCurvePrivateKey

# A certificate is back-dated by this much so that a peer whose clock is slightly behind still accepts it.
CLOCK_SKEW = dt.timedelta(minutes=5)
DEFAULT_CA_DAYS = 3650
DEFAULT_CA_NAME = "infergate-ca"

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class CertError(ValueError):
    """Bad input or unusable existing files; the message says what to fix."""


@dataclass(frozen=True)
class Issued:
    """A certificate together with its private key."""

    cert: x509.Certificate
    key: PrivateKey


def new_private_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def validate_dns_name(name: str) -> str:
    """Return `name` if it is a usable DNS SAN (a leading `*.` wildcard is allowed), else raise CertError."""
    candidate = name.strip().rstrip(".")
    labels = candidate.split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]
    if not candidate or len(candidate) > 253 or not labels or not all(_DNS_LABEL.match(lb) for lb in labels):
        raise CertError(f"{name!r} is not a valid DNS name")
    return candidate


def parse_ip(value: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise CertError(f"{value!r} is not an IP address") from None


def _subject_key_id(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """An ECDSA key only signs (TLS agrees keys with ephemeral ECDHE); a CA also signs certificates."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(common_name: str = DEFAULT_CA_NAME, days: int = DEFAULT_CA_DAYS) -> Issued:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    if days < 1:
        raise CertError(f"days must be at least 1, got {days}")
    key = new_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(_subject_key_id(key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf(
    ca: Issued,
    subject: x509.Name,
    days: int,
    usages: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName],
) -> Issued:
    if days < 1:
        raise CertError(f"days must be at least 1, got {days}")
    now = _now()
    ca_expiry = ca.cert.not_valid_after_utc
    if ca_expiry <= now:
        raise CertError(f"the CA {ca.cert.subject.rfc4514_string()} expired on {ca_expiry:%Y-%m-%d}")
    # A leaf that outlives its CA would fail verification from that day on anyway; stop at the CA's end.
    not_after = min(now + dt.timedelta(days=days), ca_expiry)
    key = new_private_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_subject_key_id(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_serving_cert(
    ca: Issued,
    dns: list[str],
    ips: list[str] | list[IPAddress] | None = None,
    days: int = 365,
    common_name: str | None = None,
) -> Issued:
    """A TLS server certificate for the given DNS names and IP addresses (at least one of them)."""
    dns_names = [validate_dns_name(d) for d in dns]
    ip_addrs = [ip if not isinstance(ip, str) else parse_ip(ip) for ip in (ips or [])]
    if not dns_names and not ip_addrs:
        raise CertError("a serving certificate needs at least one DNS name or IP address")
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ip) for ip in ip_addrs]
    # Clients check only the SANs; the CN is for people reading the certificate.
    cn = common_name or (dns_names[0] if dns_names else str(ip_addrs[0]))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])])
    return _leaf(ca, subject, days, [ExtendedKeyUsageOID.SERVER_AUTH], sans)


def issue_client_cert(
    ca: Issued, common_name: str, organizations: list[str] | None = None, days: int = 365
) -> Issued:
    """A TLS client certificate. Kubernetes reads the user name from CN and the groups from each O."""
    if not common_name:
        raise CertError("a client certificate needs a common name (the user name)")
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations or []]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return _leaf(ca, x509.Name(attrs), days, [ExtendedKeyUsageOID.CLIENT_AUTH], [])


# --- PEM files -------------------------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with `mode`, so a reader (e.g. a server reloading its certificate) never sees half a
    file and a private key is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_cert(path: Path, cert: x509.Certificate) -> None:
    write_file(path, cert_pem(cert), 0o644)


def write_key(path: Path, key: PrivateKey) -> None:
    write_file(path, key_pem(key), 0o600)


def load_ca(cert_path: Path, key_path: Path) -> Issued:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertError(f"cannot load the CA from {cert_path} and {key_path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertError(f"{key_path} is not the private key of {cert_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertError(f"{cert_path} is not a CA certificate")
    return Issued(cert, key)


def load_or_create_ca(out_dir: Path, days: int = DEFAULT_CA_DAYS) -> tuple[Issued, bool]:
    """The CA in `out_dir` (ca.crt + ca.key), created there if neither file exists. Returns (ca, created)."""
    cert_path, key_path = out_dir / "ca.crt", out_dir / "ca.key"
    have_cert, have_key = cert_path.exists(), key_path.exists()
    if have_cert and have_key:
        return load_ca(cert_path, key_path), False
    if have_cert or have_key:
        present, missing = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise CertError(
            f"{present} exists but {missing} does not: restore it, or remove {present} to start a new CA "
            "(clients that trust the old CA then need the new ca.crt)"
        )
    ca = create_ca(days=days)
    write_key(key_path, ca.key)
    write_cert(cert_path, ca.cert)
    return ca, True


def write_bundle(out_dir: Path, dns: list[str], ips: list[str], days: int = 365) -> dict[str, Path]:
    """Write ca.crt, ca.key, tls.crt and tls.key to `out_dir`.

    An existing ca.crt/ca.key pair is reused, so re-running this rotates the serving certificate while
    everything that trusts ca.crt keeps working.
    """
    out_dir = Path(out_dir)
    # Validate before touching the directory, so bad input leaves no half-made CA behind.
    dns_names = [validate_dns_name(d) for d in dns]
    ip_addrs = [parse_ip(ip) for ip in ips]
    if days < 1:
        raise CertError(f"days must be at least 1, got {days}")
    if not dns_names and not ip_addrs:
        raise CertError("give at least one DNS name or IP address")
    out_dir.mkdir(parents=True, exist_ok=True)
    ca, _ = load_or_create_ca(out_dir, days=max(DEFAULT_CA_DAYS, days))
    leaf = issue_serving_cert(ca, dns_names, ip_addrs, days=days)
    paths = {name: out_dir / name for name in ("ca.crt", "ca.key", "tls.crt", "tls.key")}
    write_key(paths["tls.key"], leaf.key)
    write_cert(paths["tls.crt"], leaf.cert)
    return paths

