"""TLS on the public listener, and mutual TLS, with real clients: web3.py over https and wss,
httpx on the REST API, the SDK, `tally wallet` and `tally audit verify` with a CA bundle. The
certificates are made here with `cryptography`: a CA, a server certificate for 127.0.0.1,
client certificates from the node's client CA and from a stranger's."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3 import AsyncWeb3, Web3, WebSocketProvider

from client.rpc import connect
from client.tls import ClientTls
from node.tls import TlsConfigError, TlsSettings
from tests.conftest import REPO, NodeProcess, free_port
from tests.test_cli_errors import assert_refused, tally

# dev account 2 (web3.py takes a ChecksumAddress, a str NewType)
RECIPIENT = ChecksumAddress(HexAddress(HexStr("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")))
DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class Authority:
    """A CA that writes PEM files into `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = directory / f"{name}.pem"
        self.pem.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool, password: bytes | None = None) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        encryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        issued = Issued(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        issued.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
        return issued


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued
    password_file: Path
    client_ca: Authority
    client: Issued
    stranger: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority(directory, "bank-ca")
    password_file = directory / "key-password"
    password_file.write_text("correct horse\n")
    client_ca = Authority(directory, "client-ca")
    return Pki(
        ca=ca,
        server=ca.issue("node", server=True, password=b"correct horse"),
        password_file=password_file,
        client_ca=client_ca,
        client=client_ca.issue("teller", server=False),
        stranger=Authority(directory, "other-ca").issue("stranger", server=False),
    )


# --- nodes -------------------------------------------------------------------------------------


@dataclass
class TlsNode(NodeProcess):
    """A `tally dev` node serving TLS, reached with `tls` (its CA, a client certificate)."""

    tls: ClientTls = field(default_factory=ClientTls)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.rpc_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.ws_port}"

    def rpc(self, method: str, params: list | None = None) -> object:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        response = httpx.post(self.url, json=body, verify=self.tls.ssl_context(), timeout=30)
        return response.json()["result"]


def tls_node(directory: Path, pki: Pki, tls: ClientTls, *extra: str) -> Iterator[TlsNode]:
    node = TlsNode(
        directory / "node",
        free_port(),
        free_port(),
        extra_args=(
            "--tls-cert",
            str(pki.server.cert),
            "--tls-key",
            str(pki.server.key),
            "--tls-key-password-file",
            str(pki.password_file),
            *extra,
        ),
        admin_port=free_port(),
        tls=tls,
    )
    node.start()
    yield node
    assert node.stop() == 0, "a TLS node must stop cleanly with idle clients connected"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsNode]:
    """TLS, no client certificates; its key is encrypted, its password in a file."""
    yield from tls_node(tmp_path_factory.mktemp("tls"), pki, ClientTls(ca_bundle=pki.ca.pem))


@pytest.fixture(scope="module")
def mtls_node(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsNode]:
    """TLS, and only clients with a certificate from the client CA."""
    yield from tls_node(
        tmp_path_factory.mktemp("mtls"),
        pki,
        ClientTls(pki.ca.pem, pki.client.cert, pki.client.key),
        "--tls-client-ca",
        str(pki.client_ca.pem),
    )


def keystore_with(directory: Path, label: str, private_key: str) -> None:
    """A Web3 Secret Storage file as `tally wallet import` writes one (cheap scrypt)."""
    import json

    from eth_account import Account

    directory.mkdir(parents=True, exist_ok=True)
    keyfile = Account.encrypt(HexStr(private_key), "pw", kdf="scrypt", iterations=4096)
    (directory / f"{label}.json").write_text(json.dumps(keyfile))


def balance(
    node: TlsNode, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tally wallet balance --raw` of dev account 1 on `node`, with `args`."""
    keys = node.datadir.parent / "keys"
    if not (keys / "dev1.json").exists():
        keystore_with(keys, "dev1", DEV_KEY_1)
    base = {
        "TALLY_RPC_URL": node.url,
        "TALLY_KEYSTORE_DIR": str(keys),
        "TALLY_KEYSTORE_PASSWORD": "pw",
        "TALLY_WALLET_KEY": "dev1",
    }
    return tally("wallet", "balance", "--raw", *args, env=base | (env or {}))


def audit(node: TlsNode, *args: str) -> subprocess.CompletedProcess[str]:
    return tally("audit", "verify", "--rpc", node.url, "--rpc-timeout", "10", *args)


# --- TLS -----------------------------------------------------------------------------------------


def test_web3_and_the_sdk_over_https_verify_the_bank_ca(node: TlsNode, pki: Pki) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"verify": str(pki.ca.pem)}))
    assert w3.eth.chain_id == 1337
    sdk = connect(node.url, tls=ClientTls(ca_bundle=pki.ca.pem))
    account = sdk.eth.account.from_key(DEV_KEY_1)
    before = w3.eth.get_balance(RECIPIENT)
    tx = {
        "to": RECIPIENT,
        "value": 7,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "nonce": sdk.eth.get_transaction_count(account.address),
        "chainId": 1337,
    }
    signed = account.sign_transaction(tx)
    receipt = sdk.eth.wait_for_transaction_receipt(
        sdk.eth.send_raw_transaction(signed.raw_transaction), timeout=30
    )
    assert receipt["status"] == 1
    assert w3.eth.get_balance(RECIPIENT) == before + 7


def test_the_banner_gives_https_and_wss_urls(node: TlsNode) -> None:
    banner = node.log_text()
    assert f"JSON-RPC       https://127.0.0.1:{node.rpc_port}\n" in banner
    assert f"WebSocket      wss://127.0.0.1:{node.ws_port}\n" in banner
    assert f"Explorer       https://127.0.0.1:{node.rpc_port}/explorer/\n" in banner
    assert f"http://127.0.0.1:{node.rpc_port}" not in banner


def test_cast_trusts_the_ca_named_by_ssl_cert_file(node: TlsNode, pki: Pki) -> None:
    """cast has no CA option (only --insecure, which Tally never suggests); its https client
    reads SSL_CERT_FILE. Its WebSocket client does not, so wss is not tried with cast."""
    cast = str(next(iter(sorted(REPO.glob("node_modules/@foundry-rs/cast-linux-*/bin/cast")))))

    def chain_id(bundle: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cast, "chain-id", "--rpc-url", node.url],
            env=os.environ | {"SSL_CERT_FILE": str(bundle)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    trusted = chain_id(pki.ca.pem)
    assert trusted.returncode == 0 and trusted.stdout.strip() == "1337", trusted.stderr
    refused = chain_id(pki.client_ca.pem)  # a CA, but not the one that signed the node
    assert refused.returncode != 0 and "UnknownIssuer" in refused.stderr, refused.stderr


def test_web3_over_wss_with_an_ssl_context(node: TlsNode, pki: Pki) -> None:
    async def over_wss() -> tuple[int, int]:
        context = ClientTls(ca_bundle=pki.ca.pem).ssl_context()
        provider = WebSocketProvider(node.ws_url, websocket_kwargs={"ssl": context})
        async with AsyncWeb3(provider) as w3:
            return await w3.eth.chain_id, await w3.eth.block_number

    chain_id, height = asyncio.run(over_wss())
    assert chain_id == 1337 and height >= 0


def test_rest_api_over_https_with_hsts_and_the_usual_headers(node: TlsNode, pki: Pki) -> None:
    key = (node.datadir / "api-admin.key").read_text().strip()
    context = ClientTls(ca_bundle=pki.ca.pem).ssl_context()
    with httpx.Client(base_url=node.url, verify=context, timeout=30) as api:
        response = api.get("/api/v1/validators", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert response.headers["x-content-type-options"] == "nosniff"
        # Sign-in-with-Ethereum names the https origin wallets are on.
        account = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        challenge = api.post("/api/v1/auth/challenge", json={"address": account})
        assert challenge.status_code == 200, challenge.text
        assert f"URI: https://127.0.0.1:{node.rpc_port}/api/v1\n" in challenge.json()["message"]
        root = api.get("/", headers={"Accept": "text/html"})
        assert root.status_code == 307 and root.headers["location"] == "/explorer/"
        assert api.get("/explorer/").status_code == 200
        # The browser rules hold over https: a foreign origin is refused, the node's own passes.
        foreign = api.get("/explorer/", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        own = api.get("/explorer/", headers={"Origin": f"https://127.0.0.1:{node.rpc_port}"})
        assert own.status_code == 200


def test_clients_without_the_ca_and_plain_http_are_refused(node: TlsNode) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
    plain = f"http://127.0.0.1:{node.rpc_port}"
    with pytest.raises(httpx.TransportError):
        httpx.post(plain, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=10)
    # HSTS is a promise about https only: the same node over plain http never existed.
    assert node.rpc("eth_chainId") == "0x539"


def test_tally_wallet_and_audit_take_a_ca_bundle(node: TlsNode, pki: Pki) -> None:
    funded = balance(node, "--ca-bundle", str(pki.ca.pem))
    assert funded.returncode == 0, funded.stderr
    assert int(funded.stdout) > 0
    refused = assert_refused(balance(node), 5, "TLS: certificate verify failed", "--ca-bundle")
    assert "CERTIFICATE_VERIFY_FAILED" not in refused  # OpenSSL's reason, not its error name
    assert_refused(balance(node, "--ca-bundle", str(pki.server.key)), 7, "CA bundle", "no PEM")

    verified = audit(node, "--ca-bundle", str(pki.ca.pem))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "all checks passed" in verified.stdout
    assert_refused(audit(node), 5, "CERTIFICATE_VERIFY_FAILED")


# --- mutual TLS ----------------------------------------------------------------------------------


def test_mutual_tls_wants_a_certificate_from_the_client_ca(mtls_node: TlsNode, pki: Pki) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
    for tls in (
        ClientTls(ca_bundle=pki.ca.pem),  # no client certificate
        ClientTls(pki.ca.pem, pki.stranger.cert, pki.stranger.key),  # another CA's
    ):
        with pytest.raises(httpx.TransportError):
            httpx.post(mtls_node.url, json=request, verify=tls.ssl_context(), timeout=10)
    assert mtls_node.rpc("eth_chainId") == "0x539"  # the teller's certificate

    w3 = Web3(
        Web3.HTTPProvider(
            mtls_node.url,
            request_kwargs={
                "verify": str(pki.ca.pem),
                "cert": (str(pki.client.cert), str(pki.client.key)),
            },
        )
    )
    assert w3.eth.chain_id == 1337

    async def over_wss() -> int:
        provider = WebSocketProvider(
            mtls_node.ws_url, websocket_kwargs={"ssl": mtls_node.tls.ssl_context()}
        )
        async with AsyncWeb3(provider) as w3:
            return await w3.eth.chain_id

    assert asyncio.run(over_wss()) == 1337


def test_tally_wallet_presents_its_client_certificate(mtls_node: TlsNode, pki: Pki) -> None:
    """The settings from the environment this time (TALLY_CA_BUNDLE, TALLY_CLIENT_*)."""
    ca = {"TALLY_CA_BUNDLE": str(pki.ca.pem)}
    teller = {"TALLY_CLIENT_CERT": str(pki.client.cert), "TALLY_CLIENT_KEY": str(pki.client.key)}
    accepted = balance(mtls_node, env=ca | teller)
    assert accepted.returncode == 0, accepted.stderr
    assert int(accepted.stdout) > 0
    # The server's refusal reaches the client as a TLS alert or a reset, whichever is first.
    assert_refused(balance(mtls_node, env=ca), 5, f"no answer from the node at {mtls_node.url}")
    mismatched = ("--client-cert", str(pki.client.cert), "--client-key", str(pki.stranger.key))
    assert_refused(balance(mtls_node, *mismatched, env=ca), 7, "not the certificate's")


# --- refusals before anything starts -------------------------------------------------------------


def refused_start(tmp_path: Path, *tls: str) -> subprocess.CompletedProcess[str]:
    datadir = tmp_path / "never"
    result = tally(
        "dev",
        "--datadir",
        str(datadir),
        "--rpc-port",
        str(free_port()),
        "--ws-port",
        str(free_port()),
        "--admin-port",
        "0",
        *tls,
        timeout=60,
    )
    assert not datadir.exists(), "the datadir was made before the TLS files were checked"
    return result


def test_unusable_tls_files_are_one_line_and_exit_7(tmp_path: Path, pki: Pki) -> None:
    missing = str(tmp_path / "nope.pem")
    refused = refused_start(tmp_path, "--tls-cert", missing, "--tls-key", str(pki.server.key))
    assert_refused(refused, 7, f"cannot read --tls-cert {missing}: No such file")
    refused = refused_start(tmp_path, "--tls-key", str(pki.server.key))
    assert_refused(refused, 2, "--tls-key needs --tls-cert")


def test_each_unusable_tls_file_is_named_with_its_fault(tmp_path: Path, pki: Pki) -> None:
    """What the node says (exit 7, as above) for each wrong file, read by the node's code."""
    wrong = tmp_path / "wrong-password"
    wrong.write_text("battery staple\n")
    cert, key, ca = pki.server.cert, pki.server.key, pki.client_ca.pem
    cases = [
        (TlsSettings(cert, key), "it is encrypted: give its password in --tls-key-password-file"),
        (TlsSettings(cert, key, wrong), "wrong password"),
        (TlsSettings(cert, pki.client.key), "is not the key of the certificate in --tls-cert"),
        (TlsSettings(key, key, pki.password_file), "holds no PEM certificate"),
        (TlsSettings(cert, cert, pki.password_file), "not a PEM private key"),
        (TlsSettings(cert, key, pki.password_file, key), f"--tls-client-ca {key} holds no PEM"),
        (TlsSettings(cert, key, tmp_path / "nope"), "cannot read --tls-key-password-file"),
    ]
    for settings, fault in cases:
        with pytest.raises(TlsConfigError, match=re.escape(fault)):
            settings.server_context()
    context = TlsSettings(cert, key, pki.password_file, ca).server_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED


# --- a local network with TLS ------------------------------------------------------------------


def test_localnet_up_tls_serves_every_node_over_tls(tmp_path: Path) -> None:
    """`tally localnet up --tls`: a generated CA, a certificate per node, https URLs, and
    clients that trust that CA, `up`'s own readiness probe among them (a node it could not
    reach would be "not answering yet")."""
    from node import localnet

    net = tmp_path / "net"
    try:
        up = tally("localnet", "up", "--dir", str(net), "--validators", "1", "--tls")
        assert up.returncode == 0, up.stdout + up.stderr
        ca = (net / "tls" / "ca.pem").resolve()
        assert f"TLS on client ports; clients trust {ca}" in up.stdout
        (node,) = localnet.load(net)
        assert f"{node.url}  started (pid {node.pid})" in up.stdout
        assert node.url == f"https://127.0.0.1:{node.rpc_port}"
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"verify": str(ca)}))
        assert w3.eth.chain_id == 1337
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        assert (net / "tls" / "node0.key").stat().st_mode & 0o777 == 0o600
    finally:
        if (net / localnet.STATE_FILE).exists():
            localnet.down(net)


def test_hsts_is_sent_over_https_only() -> None:
    """Browsers ignore HSTS over plain http, and a plain node must not claim https."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from node.api.headers import SecurityHeaders

    app = SecurityHeaders(Starlette(routes=[Route("/", lambda _: PlainTextResponse("ok"))]))

    async def get(base_url: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url) as c:
            return await c.get("/")

    assert "strict-transport-security" not in asyncio.run(get("http://node.test")).headers
    secure = asyncio.run(get("https://node.test"))
    assert secure.headers["strict-transport-security"] == "max-age=31536000"
