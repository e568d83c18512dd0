"""How a refusal by the API server is told (status message) and retried (backoff)."""

from __future__ import annotations

import json

import pytest
from charterflow_operator.kube import api_message, namespace_terminating
from charterflow_operator.workqueue import retry_delay
from kubernetes.client.exceptions import ApiException


def refusal(status: int, reason: str, body: object) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = body
    return exc


def test_message_is_the_status_message_without_the_request() -> None:
    body = json.dumps({"kind": "Status", "message": 'services "cf" is forbidden: exceeded quota'})
    assert api_message(refusal(403, "Forbidden", body)) == (
        '403 Forbidden: services "cf" is forbidden: exceeded quota'
    )


@pytest.mark.parametrize("body", [None, "", b"<html>bad gateway</html>", "[1, 2]"])
def test_message_without_a_status_body_is_code_and_reason(body: object) -> None:
    assert api_message(refusal(502, "Bad Gateway", body)) == "502 Bad Gateway"


def test_a_terminating_namespace_is_told_apart_from_rbac() -> None:
    gone = 'secrets "cf-jwt" is forbidden: unable to create new content in namespace t-1 '
    gone += "because it is being terminated"
    rbac = 'secrets is forbidden: User "system:serviceaccount:x:y" cannot create resource'
    assert namespace_terminating(refusal(403, "Forbidden", json.dumps({"message": gone})))
    assert not namespace_terminating(refusal(403, "Forbidden", json.dumps({"message": rbac})))


def test_retry_backs_off_and_never_exceeds_the_backstop() -> None:
    assert retry_delay(0, 60) == 60
    assert [retry_delay(n, 60) for n in range(1, 6)] == [5, 10, 20, 40, 60]
    assert retry_delay(10_000, 60) == 60
    assert retry_delay(1, 2) == 2
