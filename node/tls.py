"""TLS for the public listener (JSON-RPC over HTTP and WebSocket, the REST API, the explorer).

The files are read with `cryptography` first, only to say precisely what is wrong with them
(OpenSSL's own report for a missing password, a wrong one or a key of another certificate is
"PEM lib"); the `ssl.SSLContext` uvicorn serves with is then loaded from the same files.

The context accepts TLS 1.2 and 1.3 with Python's default ciphers. With a client CA, every
client must present a certificate it signed (mutual TLS): only that CA is trusted, never the
system's store, which would let any certificate a public CA issued in.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger(__name__)


class TlsConfigError(Exception):
    """A certificate, key, password or CA file the node cannot serve with (exit 7)."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """`--tls-cert`, `--tls-key`, `--tls-key-password-file` and `--tls-client-ca`."""

    cert: Path
    key: Path
    key_password_file: Path | None = None
    client_ca: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        """The checked server context; `TlsConfigError` says which file is wrong and why."""
        password = self._password()
        certificate = _certificate(self.cert)
        _check_key(self.key, password, certificate)
        if self.client_ca is not None:
            _certificates(self.client_ca, "--tls-client-ca")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key, password=lambda: password or b"")
            if self.client_ca is not None:
                context.load_verify_locations(cafile=self.client_ca)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:  # what the checks above did not foresee
            raise TlsConfigError(f"cannot use the TLS files: {exc}") from exc
        return context

    def _password(self) -> bytes | None:
        """The key's password: the file's first line (as geth's --password reads it)."""
        if self.key_password_file is None:
            return None
        try:
            lines = self.key_password_file.read_bytes().splitlines()
        except OSError as exc:
            raise TlsConfigError(
                f"cannot read --tls-key-password-file {self.key_password_file}: {_reason(exc)}"
            ) from exc
        return lines[0] if lines else b""


def _certificates(path: Path, option: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise TlsConfigError(f"cannot read {option} {path}: {_reason(exc)}") from exc
    except ValueError as exc:
        raise TlsConfigError(f"{option} {path} holds no PEM certificate") from exc


def _certificate(path: Path) -> x509.Certificate:
    """The server's certificate, first in its file (intermediates may follow)."""
    certificate = _certificates(path, "--tls-cert")[0]
    if certificate.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
        log.warning("the TLS certificate %s expired on %s", path, certificate.not_valid_after_utc)
    return certificate


def _check_key(path: Path, password: bytes | None, certificate: x509.Certificate) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read --tls-key {path}: {_reason(exc)}") from exc
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        hint = (
            "it is encrypted: give its password in --tls-key-password-file"
            if password is None
            else "it is not encrypted: drop --tls-key-password-file"
        )
        raise TlsConfigError(f"cannot use --tls-key {path}: {hint}") from exc
    except ValueError as exc:
        reason = "wrong password" if password is not None and b"ENCRYPTED" in data else None
        raise TlsConfigError(
            f"cannot use --tls-key {path}: {reason or 'not a PEM private key'}"
        ) from exc
    if key.public_key() != certificate.public_key():
        raise TlsConfigError(f"--tls-key {path} is not the key of the certificate in --tls-cert")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
