"""Rate limits per caller on a real node started with a small limit: the credential over its
limit gets 429 with Retry-After and the structured error; other credentials, and callers
without one, keep their own budgets. (The per-address budgets, and what invalid credentials
cost, are in tests/test_api_abuse.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import NodeProcess, free_port
from tests.test_api_support import Api, admin_key

LIMIT = 6


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(
        tmp_path_factory.mktemp("ratelimit") / "node",
        free_port(),
        free_port(),
        extra_args=("--api-rate-limit", f"{LIMIT}/hour"),
    )
    node.start()
    yield node
    node.stop()


def test_each_credential_has_its_own_budget(node: NodeProcess) -> None:
    admin = Api(node, admin_key(node))
    auditor = admin.as_(admin.new_key("auditor"))  # the admin's first request
    other = admin.as_(admin.new_key("auditor"))  # its second
    for _ in range(LIMIT):
        assert auditor.get("/me").status_code == 200
    refused = auditor.get("/me")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert auditor.get("/status").status_code == 429  # public routes count too
    # Another credential, and the admin that made them, are unaffected.
    assert [other.get("/me").status_code for _ in range(LIMIT)] == [200] * LIMIT
    assert other.get("/me").status_code == 429
    assert admin.get("/me").status_code == 200
    # JSON-RPC on the same listener is not the REST API's to limit.
    assert all(node.rpc("eth_chainId") == "0x539" for _ in range(LIMIT + 2))


def test_callers_without_a_credential_share_a_budget_per_address(node: NodeProcess) -> None:
    anonymous = Api(node)
    answers = [anonymous.get("/status").status_code for _ in range(LIMIT + 1)]
    assert answers == [200] * LIMIT + [429]
    assert Api(node, admin_key(node)).get("/status").status_code == 200
