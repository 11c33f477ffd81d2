from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from herald.delivery.dkim import DkimSigner, signer_from_settings
from herald.settings import Settings

MESSAGE = (
    b"From: Shop <news@example.com>\r\nTo: ann@example.org\r\nSubject: Hello   there\r\n"
    b"Message-ID: <abc@example.com>\r\nList-Unsubscribe: <https://h/u/x>,\r\n <mailto:u@example.com>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nBody line\r\n\r\n\r\n"
)


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _dns(record: bytes):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel._domainkey.example.com."
        return record

    return lookup


def test_rsa_signature_verifies_with_dkimpy() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signed = DkimSigner(domain="example.com", selector="sel", private_key_pem=_pem(key)).sign(MESSAGE)
    assert signed.startswith(b"DKIM-Signature:") and signed.endswith(MESSAGE)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    assert dkim.verify(signed, dnsfunc=_dns(record))
    assert b"h=from:to:subject:message-id:list-unsubscribe:list-unsubscribe-post" in signed.replace(b"\r\n\t", b"")
    tampered = signed.replace(b"Body line", b"Body lime")
    assert not dkim.verify(tampered, dnsfunc=_dns(record))


def test_ed25519_signature_verifies_with_dkimpy() -> None:
    pytest.importorskip("nacl", reason="dkimpy verifies Ed25519 only with PyNaCl installed")
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signed = DkimSigner(domain="example.com", selector="sel", private_key_pem=_pem(key)).sign(MESSAGE)
    assert dkim.verify(signed, dnsfunc=_dns(b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)))


def test_settings_switch_it_on(tmp_path: Path) -> None:
    assert signer_from_settings(Settings(secret_key="x")) is None
    path = tmp_path / "dkim.pem"
    path.write_bytes(_pem(ed25519.Ed25519PrivateKey.generate()))
    signer = signer_from_settings(
        Settings(secret_key="x", dkim_domain="example.com", dkim_selector="s1", dkim_private_key_path=path)
    )
    assert signer is not None and signer.algorithm == "ed25519-sha256"


def test_refuses_other_key_types() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = _pem(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DkimSigner(domain="example.com", selector="sel", private_key_pem=pem)
