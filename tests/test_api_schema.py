"""Schemathesis against the node's own /openapi.json with an auditor credential: generated
requests to every operation (valid and invalid inputs alike) never get a server error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import NodeProcess
from tests.test_api_support import Api, admin_key, start_node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = start_node(tmp_path_factory.mktemp("schema"))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def auditor(node: NodeProcess) -> str:
    return Api(node, admin_key(node)).new_key("auditor")


@pytest.fixture(scope="module")
def api_schema(node: NodeProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(node.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case, auditor: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {auditor}"}, checks=[not_a_server_error]
    )
