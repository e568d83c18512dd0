"""Password reset and invitations, delivered by a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from charterflow.models import Invitation, PasswordReset
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Account, Api
from tests.support.smtp import SmtpServer, smtp_server


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def mailing(api: Api, smtp: SmtpServer) -> Iterator[Api]:
    """The same app with SMTP pointed at the loopback server."""
    with api.variant(smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False) as running:
        yield running


def _token_of(link: str) -> str:
    assert "#token=" in link, link  # in the fragment: never sent to a server, never logged
    return link.split("#token=", 1)[1]


def _server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the app logged (the test's own HTTP client logs its URLs: not the app's)."""
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "charterflow.access" for r in records)
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)


RESET = "Reset your CharterFlow password"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_reset_link_arrives_by_email_and_works_once(
    mailing: Api, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = mailing.register("Forgetful")
    r = mailing.client.post(f"{API}/auth/password-reset", json={"email": account.email})
    assert r.status_code == 202
    message = smtp.wait_for(account.email, subject=RESET)
    link = SmtpServer.link(message)
    assert link.startswith(f"{mailing.settings.app_url}/reset-password#token=")
    token = _token_of(link)
    with Session(mailing.engine) as db:  # only the hash is stored
        hashes = set(db.scalars(select(PasswordReset.token_hash)))
    assert token not in hashes
    body = {"token": token, "new_password": "a brand new password"}
    r = mailing.client.post(f"{API}/auth/password-reset/confirm", json=body)
    assert r.status_code == 200
    assert (
        mailing.client.get(f"{API}/auth/me", headers=_bearer(r.json()["access_token"])).json()["id"]
        == account.id
    )
    assert mailing.client.get(f"{API}/auth/me", headers=account.headers).status_code == 401
    again = mailing.client.post(f"{API}/auth/password-reset/confirm", json=body)
    assert again.status_code == 400
    login = {"email": account.email, "password": "a brand new password"}
    assert mailing.client.post(f"{API}/auth/login", json=login).status_code == 200
    assert token not in _server_log(caplog)  # the secret link is never logged


def test_unknown_emails_get_the_same_answer_and_no_email(mailing: Api, smtp: SmtpServer) -> None:
    known = mailing.register("Known")
    unknown = f"nobody-{known.id[:8]}@example.com"
    a = mailing.client.post(f"{API}/auth/password-reset", json={"email": known.email})
    b = mailing.client.post(f"{API}/auth/password-reset", json={"email": unknown})
    assert (a.status_code, a.json()) == (b.status_code, b.json())
    smtp.wait_for(known.email, subject=RESET)
    assert smtp.messages_to(unknown) == []


def test_bad_or_expired_reset_tokens_are_400(mailing: Api, smtp: SmtpServer) -> None:
    account = mailing.register("Late")
    mailing.client.post(f"{API}/auth/password-reset", json={"email": account.email})
    token = _token_of(SmtpServer.link(smtp.wait_for(account.email, subject=RESET)))
    with Session(mailing.engine) as db:  # the hour passes
        for row in db.scalars(select(PasswordReset)):
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.commit()
    for bad in (token, "not-a-token"):
        r = mailing.client.post(
            f"{API}/auth/password-reset/confirm", json={"token": bad, "new_password": "whatever12"}
        )
        assert r.status_code == 400


def test_reset_requests_are_rate_limited_per_email(api: Api, smtp: SmtpServer) -> None:
    with api.variant(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,
        password_reset_rate_limit_per_minute=2,
    ) as limited:
        for email in ("someone@example.com", "nobody-at-all@example.com"):
            codes = [
                limited.client.post(f"{API}/auth/password-reset", json={"email": email}).status_code
                for _ in range(3)
            ]
            assert codes == [202, 202, 429]


def test_an_invitation_arrives_by_email_and_joins_the_workspace(
    mailing: Api, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = mailing.register("Owner")
    workspace = mailing.personal_workspace(owner)
    invitee_email = f"invitee-{owner.id[:8]}@example.com"
    r = mailing.client.post(
        f"{API}/workspaces/{workspace}/invitations",
        json={"email": invitee_email.upper(), "role": "editor"},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["emailed"] is True
    assert r.json()["invite_url"] is None  # only the invitee's inbox has the link
    pending = mailing.client.get(
        f"{API}/workspaces/{workspace}/invitations", headers=owner.headers
    ).json()
    assert [i["email"] for i in pending["items"]] == [invitee_email]
    link = SmtpServer.link(smtp.wait_for(invitee_email))
    token = _token_of(link)
    # The invitee registers, then accepts; someone else with the link cannot.
    other = mailing.register("Other")
    assert (
        mailing.client.post(
            f"{API}/invitations/accept", json={"token": token}, headers=other.headers
        ).status_code
        == 403
    )
    r = mailing.client.post(
        f"{API}/auth/register",
        json={"email": invitee_email, "password": "invitee password", "name": "Invitee"},
    )
    invitee = Account(r.json()["user"], r.json()["access_token"], invitee_email, "invitee password")
    r = mailing.client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=invitee.headers
    )
    assert r.status_code == 200
    assert r.json() == {"workspace_id": workspace, "role": "editor"}
    members = mailing.client.get(f"{API}/workspaces/{workspace}/members", headers=owner.headers)
    assert {(m["email"], m["role"]) for m in members.json()["items"]} >= {(invitee_email, "editor")}
    again = mailing.client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=invitee.headers
    )
    assert again.status_code == 404  # single use
    assert token not in _server_log(caplog)


def test_without_smtp_the_owner_sees_the_link(api: Api) -> None:
    owner, invitee = api.register("Owner"), api.register("Invitee")
    workspace = api.personal_workspace(owner)
    r = api.client.post(
        f"{API}/workspaces/{workspace}/invitations",
        json={"email": invitee.email, "role": "viewer"},
        headers=owner.headers,
    )
    assert r.status_code == 201
    assert r.json()["emailed"] is False
    token = _token_of(r.json()["invite_url"])
    with Session(api.engine) as db:
        stored = db.scalar(select(Invitation.token_hash).where(Invitation.id == r.json()["id"]))
    assert stored is not None
    assert token not in stored
    r = api.client.post(f"{API}/invitations/accept", json={"token": token}, headers=invitee.headers)
    assert r.json()["role"] == "viewer"


def test_the_contracts_path_form_accepts_once_and_checks_the_email(api: Api) -> None:
    """DESIGN §4b's ``POST /invitations/{token}/accept`` keeps working beside the body form."""
    owner, invitee, other = api.register("Owner"), api.register("Invitee"), api.register("O")
    workspace = api.personal_workspace(owner)
    r = api.client.post(
        f"{API}/workspaces/{workspace}/invitations",
        json={"email": invitee.email, "role": "editor"},
        headers=owner.headers,
    )
    token = _token_of(r.json()["invite_url"])
    url = f"{API}/invitations/{token}/accept"
    assert api.client.post(url, headers=other.headers).status_code == 403
    r = api.client.post(url, headers=invitee.headers)
    assert r.status_code == 200
    assert r.json() == {"workspace_id": workspace, "role": "editor"}
    assert api.client.post(url, headers=invitee.headers).status_code == 404


def test_invitations_are_for_owners_and_revocable(api: Api) -> None:
    owner, editor, stranger = api.register("Owner"), api.register("Editor"), api.register("X")
    workspace = api.personal_workspace(owner)
    api.add_member(owner, workspace, editor, "editor")
    body = {"email": "someone@example.com", "role": "viewer"}
    url = f"{API}/workspaces/{workspace}/invitations"
    assert api.client.post(url, json=body, headers=editor.headers).status_code == 403
    assert api.client.get(url, headers=editor.headers).status_code == 403
    assert api.client.post(url, json=body, headers=stranger.headers).status_code == 404
    assert api.client.get(url, headers=stranger.headers).status_code == 404
    member = {"email": editor.email, "role": "viewer"}
    assert api.client.post(url, json=member, headers=owner.headers).status_code == 409
    created = api.client.post(url, json=body, headers=owner.headers).json()
    assert (
        api.client.delete(
            f"{API}/invitations/{created['id']}", headers=stranger.headers
        ).status_code
        == 404
    )
    assert (
        api.client.delete(f"{API}/invitations/{created['id']}", headers=editor.headers).status_code
        == 403
    )
    assert (
        api.client.delete(f"{API}/invitations/{created['id']}", headers=owner.headers).status_code
        == 204
    )
    assert api.client.get(url, headers=owner.headers).json()["total"] == 0
    token = _token_of(created["invite_url"])
    assert (
        api.client.post(
            f"{API}/invitations/accept", json={"token": token}, headers=stranger.headers
        ).status_code
        == 404
    )


def test_an_expired_invitation_cannot_be_accepted(api: Api) -> None:
    owner, invitee = api.register("Owner"), api.register("Invitee")
    workspace = api.personal_workspace(owner)
    created = api.client.post(
        f"{API}/workspaces/{workspace}/invitations",
        json={"email": invitee.email, "role": "viewer"},
        headers=owner.headers,
    ).json()
    with Session(api.engine) as db:
        row = db.get(Invitation, created["id"])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.commit()
    token = _token_of(created["invite_url"])
    r = api.client.post(f"{API}/invitations/accept", json={"token": token}, headers=invitee.headers)
    assert r.status_code == 404
