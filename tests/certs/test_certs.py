"""The certificate tooling: chains that real TLS stacks accept, CA reuse for rotation, and the CLI."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from certs.issue import CertError, create_ca, issue_client_cert, issue_serving_cert, write_bundle
from infergate.cli import main


async def _handshake(bundle: dict[str, Path], connect_host: str, server_hostname: str) -> bytes:
    """Serve tls.crt on 127.0.0.1 and connect with a client that trusts only ca.crt and checks the name."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(bundle["tls.crt"], bundle["tls.key"])

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(bundle["ca.crt"]))
    try:
        async with server:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(connect_host, port, ssl=client_ctx, server_hostname=server_hostname),
                timeout=10,
            )
            data = await reader.read()
            writer.close()
            return data
    finally:
        server.close()


@pytest.fixture
def bundle(tmp_path: Path) -> dict[str, Path]:
    return write_bundle(tmp_path / "tls", ["webhook.infergate-system.svc", "localhost"], ["127.0.0.1"], days=30)


async def test_handshake_with_dns_san(bundle: dict[str, Path]) -> None:
    assert await _handshake(bundle, "127.0.0.1", "webhook.infergate-system.svc") == b"hello"


async def test_handshake_with_ip_san(bundle: dict[str, Path]) -> None:
    assert await _handshake(bundle, "127.0.0.1", "127.0.0.1") == b"hello"


async def test_handshake_rejects_name_not_in_sans(bundle: dict[str, Path]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(bundle, "127.0.0.1", "other.example.com")


async def test_handshake_rejects_other_ca(bundle: dict[str, Path], tmp_path: Path) -> None:
    other = write_bundle(tmp_path / "other", ["localhost"], [])
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake({**bundle, "ca.crt": other["ca.crt"]}, "127.0.0.1", "localhost")


def test_chain_verifies_with_cryptography(bundle: dict[str, Path]) -> None:
    ca = x509.load_pem_x509_certificate(bundle["ca.crt"].read_bytes())
    leaf = x509.load_pem_x509_certificate(bundle["tls.crt"].read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("localhost"))
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["webhook.infergate-system.svc", "localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_key_files_are_private(bundle: dict[str, Path]) -> None:
    for name in ("ca.key", "tls.key"):
        assert stat.S_IMODE(bundle[name].stat().st_mode) == 0o600, name
    assert stat.S_IMODE(bundle["tls.crt"].stat().st_mode) == 0o644


def test_reissue_keeps_the_ca(tmp_path: Path) -> None:
    first = write_bundle(tmp_path, ["a.example"], [])
    ca_before = first["ca.crt"].read_bytes()
    leaf_before = first["tls.crt"].read_bytes()
    second = write_bundle(tmp_path, ["a.example", "b.example"], ["10.1.2.3"])
    assert second["ca.crt"].read_bytes() == ca_before
    assert second["tls.crt"].read_bytes() != leaf_before
    ca = x509.load_pem_x509_certificate(ca_before)
    leaf = x509.load_pem_x509_certificate(second["tls.crt"].read_bytes())
    PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("b.example")).verify(leaf, [])


def test_half_a_ca_is_an_error(tmp_path: Path) -> None:
    write_bundle(tmp_path, ["a.example"], [])
    (tmp_path / "ca.key").unlink()
    with pytest.raises(CertError, match="ca.key"):
        write_bundle(tmp_path, ["a.example"], [])


def test_client_cert_carries_user_and_groups() -> None:
    ca = create_ca()
    client = issue_client_cert(ca, "admin", ["system:masters"], days=1)
    subject = client.cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    eku = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # cryptography's client verifier insists on a SAN, which Kubernetes client certificates do not need.
    client.cert.verify_directly_issued_by(ca.cert)


def test_serving_cert_needs_a_name() -> None:
    with pytest.raises(CertError):
        issue_serving_cert(create_ca(), [], [])


def test_cli_writes_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["certs", "--out", str(out), "--dns", "svc,svc.ns.svc", "--ip", "127.0.0.1,::1", "--days", "7"])
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert "created CA" in capsys.readouterr().out
    leaf = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["svc", "svc.ns.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 7 * 86400 <= lifetime.total_seconds() <= 7 * 86400 + 3600

    assert main(["certs", "--out", str(out), "--dns", "svc"]) == 0
    assert "reused CA" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dns", "svc", "--ip", "300.1.1.1"], "'300.1.1.1' is not an IP address"),
        (["--dns", "svc", "--days", "0"], "must be at least 1"),
        (["--dns", "svc", "--days", "soon"], "not a whole number"),
        (["--dns", "bad name"], "not a valid DNS name"),
        ([], "--dns"),
    ],
)
def test_cli_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certs", "--out", str(tmp_path / "x"), *argv])
    assert exc.value.code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certs", "--help"])
    assert exc.value.code == 0
    assert "--dns NAME[,NAME]" in capsys.readouterr().out
