"""Property-based run of every operation in /openapi.json, as an authenticated user.

Schemathesis generates requests from the schema; every response must be documented (status,
content type, headers) and match its schema, and none may be a 5xx.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import API, Account, Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _real_ids(api: Api, user: Account) -> dict[str, str]:
    """Ids of things the user can reach, so that generated requests get past the 404s."""
    notebook = api.notebook(user)
    document = api.upload(user, notebook["id"], "seed.md", b"# seed\n").json()
    conversation = api.client.post(
        f"/api/v1/notebooks/{notebook['id']}/conversations", json={}, headers=user.headers
    ).json()
    note = api.client.post(
        f"/api/v1/notebooks/{notebook['id']}/notes",
        json={"title": "seed", "body": "seed"},
        headers=user.headers,
    ).json()
    keys = api.client.get("/api/v1/auth/tokens", headers=user.headers).json()["items"]
    api_key = (
        keys[0]
        if keys
        else api.client.post(
            "/api/v1/auth/tokens", json={"name": "seed"}, headers=user.headers
        ).json()
    )
    charter = api.client.post(
        f"/api/v1/notebooks/{notebook['id']}/charters",
        json={"template": "sop", "title": "seed"},
        headers=user.headers,
    ).json()
    return {
        "token_id": api_key["id"],
        "charter_id": charter["id"],
        "key": "steps",
        "number": "1",
        "note_id": note["id"],
        "conversation_id": conversation["id"],
        "workspace_id": notebook["workspace_id"],
        "notebook_id": notebook["id"],
        "document_id": document["id"],
        "user_id": user.id,
    }


def test_api_conforms_to_its_schema(api: Api) -> None:
    """Each operation gets its own Hypothesis run, half of its cases aimed at real objects.

    (Schemathesis' lazy pytest loader does not work with this pytest version, so the
    operations are driven directly through their strategies.)
    """
    user = api.register("Fuzz")
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        # Fresh ids for each operation: a DELETE may have removed the previous ones; and a
        # fresh token for sign-out, which revokes the one it is called with.
        caller = _signed_in_again(api, user) if operation.path.endswith("/logout") else user
        if operation.path.endswith(("/logout-all", "/refresh", "/password")):
            caller = api.register("Throwaway")  # these end the caller's sessions
        _fuzz(operation, api, caller, _real_ids(api, user))


def _signed_in_again(api: Api, user: Account) -> Account:
    body = {"email": user.email, "password": user.password}
    token = api.client.post(f"{API}/auth/login", json=body).json()["access_token"]
    return Account(user.user, token, user.email, user.password)


def _fuzz(operation: APIOperation, api: Api, user: Account, real: dict[str, str]) -> None:
    @given(case=operation.as_strategy(), aim=st.booleans())
    @settings(
        max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case, aim: bool) -> None:
        if aim and case.path_parameters:
            case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
        if case.path.endswith("/documents/url") and isinstance(case.body, dict):
            # Generated hosts would be looked up in DNS by the worker: aim every case at an
            # address that is refused before any lookup or connection.
            case.body["url"] = "http://127.0.0.1:9/page"
        case.call_and_validate(base_url=api.url, headers=user.headers, checks=CHECKS)

    check()
