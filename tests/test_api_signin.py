"""Sign-in with Ethereum (EIP-4361) end to end with eth-account keys: the challenge, the
token, and every refusal (wrong signer, altered message, replayed nonce, expired challenge,
expired token, garbage token), on dev chains with and without permissioning."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from tests.conftest import NodeProcess
from tests.test_api_support import Api, sign_in


def _sign(account: LocalAccount, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex()


def _refused(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert fragment in error["message"]


@pytest.fixture(scope="module")
def api(shared_node: NodeProcess) -> Api:
    return Api(shared_node)


def test_challenge_is_an_eip4361_message_for_this_chain(api: Api, dev_accounts: list) -> None:
    account = dev_accounts[6]
    body = api.post("/auth/challenge", {"address": account.address.lower()}).json()
    lines = body["message"].split("\n")
    assert lines[0].endswith(" wants you to sign in with your Ethereum account:")
    assert lines[1] == account.address  # checksummed
    assert "Chain ID: 1337" in lines
    assert f"Nonce: {body['nonce']}" in lines
    assert "Version: 1" in lines
    assert any(line.startswith("Expiration Time: ") for line in lines)
    assert body["expires_at"] > 0


def test_sign_in_gives_a_short_lived_token(api: Api, dev_accounts: list) -> None:
    answer = sign_in(api, dev_accounts[6])
    assert answer["token_type"] == "bearer"
    assert answer["role"] == "customer"
    me = api.as_(answer["token"]).ok("/me")
    assert me == {
        "role": "customer",
        "label": "sign-in with Ethereum",
        "addresses": [dev_accounts[6].address],
        "key_id": None,
    }
    via_header = api.as_(None).http.get("/api/v1/me", headers={"X-API-Key": answer["token"]})
    assert via_header.status_code == 200


def test_unknown_address_is_a_customer_on_an_open_dev_chain(api: Api) -> None:
    stranger = Account.create()
    answer = sign_in(api, stranger)
    assert answer["role"] == "customer"
    wallet = api.as_(answer["token"])
    assert wallet.get(f"/accounts/{stranger.address}").status_code == 200
    assert wallet.get(f"/accounts/{Account.create().address}").status_code == 403


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m, a: (m, _sign(Account.create(), m)), id="wrong signer"),
        pytest.param(
            lambda m, a: (
                m.replace("Sign in", "Sign up"),
                _sign(a, m.replace("Sign in", "Sign up")),
            ),
            id="altered message",
        ),
        pytest.param(lambda m, a: (m, "0x1234"), id="garbage signature"),
        pytest.param(lambda m, a: (m, _sign(a, m + " ")), id="signature of other text"),
    ],
)
def test_bad_answers_are_refused_and_spend_the_nonce(
    api: Api, dev_accounts: list, tamper: Callable
) -> None:
    account = dev_accounts[6]
    message = api.post("/auth/challenge", {"address": account.address}).json()["message"]
    text, signature = tamper(message, account)
    response = api.post("/auth/token", {"message": text, "signature": signature})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    # The nonce is spent by the failed attempt: the right answer no longer works either.
    again = api.post("/auth/token", {"message": message, "signature": _sign(account, message)})
    _refused(again, "unknown or already used")


def test_a_nonce_works_once(api: Api, dev_accounts: list) -> None:
    account = dev_accounts[7]
    message = api.post("/auth/challenge", {"address": account.address}).json()["message"]
    signature = _sign(account, message)
    first = api.post("/auth/token", {"message": message, "signature": signature})
    assert first.status_code == 200
    _refused(api.post("/auth/token", {"message": message, "signature": signature}), "already used")


def test_garbage_tokens_and_bad_requests(api: Api) -> None:
    for credential in ("garbage", "eyJhbGciOiJIUzI1NiJ9.e30.x", "tk_" + "a" * 43):
        response = api.as_(credential).get("/me")
        _refused(response, "invalid")
    bad_address = api.post("/auth/challenge", {"address": "0x1234"})
    assert bad_address.status_code == 422
    assert bad_address.json()["error"]["code"] == "invalid_request"
    unknown = api.post("/auth/token", {"message": "hello", "signature": "0x00"})
    _refused(unknown, "unknown or already used")


def test_expired_challenge_and_expired_token(
    node_factory: Callable[..., NodeProcess], dev_accounts: list[LocalAccount]
) -> None:
    """A node whose challenges and sessions live 0 s: both are expired as soon as issued."""
    node = node_factory(extra_args=("--api-challenge-ttl", "0"))
    api = Api(node)
    account = dev_accounts[6]
    message = api.post("/auth/challenge", {"address": account.address}).json()["message"]
    _refused(
        api.post("/auth/token", {"message": message, "signature": _sign(account, message)}),
        "expired",
    )
    node.stop()
    short = node_factory(extra_args=("--api-session-ttl", "0"))
    answer = sign_in(Api(short), account)
    _refused(Api(short, answer["token"]).get("/me"), "expired")


def test_permissioned_chain_refuses_unknown_wallets(
    node_factory: Callable[..., NodeProcess], dev_accounts: list[LocalAccount]
) -> None:
    node = node_factory(extra_args=("--permissioned",))
    api = Api(node)
    stranger = Account.create()
    message = api.post("/auth/challenge", {"address": stranger.address}).json()["message"]
    response = api.post("/auth/token", {"message": message, "signature": _sign(stranger, message)})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert sign_in(api, dev_accounts[4])["role"] == "enterprise"
