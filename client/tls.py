"""How the SDK trusts a node's TLS certificate and proves its own identity (mutual TLS).

A node serving `--tls-cert` is usually signed by the bank's own CA, which no system store
holds: `ca_bundle` names the PEM file of CA certificates to trust instead of the system's (as
`curl --cacert` does). A node serving `--tls-client-ca` wants a client certificate:
`client_cert` and `client_key` (PEM; the key unencrypted, protected by its file mode, since the
HTTP transport web3.py uses cannot ask for a password). Verification is never turned off: a
node's certificate that the bundle does not vouch for is refused.

    tls = ClientTls(ca_bundle=Path("bank-ca.pem"))
    w3 = connect("https://node.bank.example:8545", tls=tls)
    AsyncWeb3(WebSocketProvider("wss://...", websocket_kwargs={"ssl": tls.ssl_context()}))
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ClientTlsError(ValueError):
    """A CA bundle, client certificate or key that cannot be used."""


@dataclass(frozen=True, slots=True)
class ClientTls:
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context (TLS 1.2 at least): `ca_bundle`, else the system's CAs,
        with the client certificate loaded if one is set. `ClientTlsError` says which file is
        wrong."""
        if (self.client_cert is None) != (self.client_key is None):
            raise ClientTlsError("a client certificate and its key go together")
        try:
            context = ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ClientTlsError(f"cannot use the CA bundle {self.ca_bundle}: {_why(exc)}") from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_cert is not None:
            try:
                context.load_cert_chain(self.client_cert, self.client_key, password=lambda: b"")
            except (OSError, ssl.SSLError) as exc:
                raise ClientTlsError(
                    f"cannot use the client certificate {self.client_cert} with the key "
                    f"{self.client_key}: {_why(exc)}"
                ) from exc
        return context

    def requests_kwargs(self) -> dict[str, Any]:
        """The same settings as `requests` (under web3.py's HTTPProvider) takes them."""
        self.ssl_context()  # the files are checked here, with the messages above
        kwargs: dict[str, Any] = {"verify": str(self.ca_bundle) if self.ca_bundle else True}
        if self.client_cert is not None and self.client_key is not None:
            kwargs["cert"] = (str(self.client_cert), str(self.client_key))
        return kwargs


def _why(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the key is not the certificate's"
        if exc.reason == "NO_CERTIFICATE_OR_CRL_FOUND":
            return "no PEM certificate in it"
        if exc.library == "SSL" and exc.reason is None:  # OpenSSL's "PEM lib"
            return "not PEM, or an encrypted key"
        return str(exc.reason or exc)
    return exc.strerror or str(exc)
