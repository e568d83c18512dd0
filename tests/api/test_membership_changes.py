"""Issue 26, items 6 and 7: access that outlives removal, and adding people without consent.

Item 6: a removed co-owner's pending invitation (made as owner) still worked; a full API key
could add any account as owner, and that membership survived revoking the key. Invitations
now carry their inviter's authority (void once they are removed, demoted or deactivated), and
keys cannot change memberships or roles."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import API, Account, Api, verify_email


def _invite(api: Api, owner: Account, ws: str, email: str, role: str) -> str:
    """The token of a new invitation (no SMTP here: the link is shown to the owner)."""
    r = api.client.post(
        f"{API}/workspaces/{ws}/invitations",
        json={"email": email, "role": role},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["invite_url"]).split("#token=", 1)[1]


def _accept(api: Api, who: Account, token: str) -> httpx.Response:
    return api.client.post(f"{API}/invitations/accept", json={"token": token}, headers=who.headers)


def join(api: Api, owner: Account, ws: str, member: Account, role: str) -> None:
    """``member`` joins ``ws`` with ``role`` the consenting way: invited, then accepting."""
    r = _accept(api, member, _invite(api, owner, ws, member.email, role))
    assert r.status_code == 200, r.text


def _key(api: Api, account: Account) -> dict[str, str]:
    r = api.client.post(f"{API}/auth/tokens", json={"name": "full"}, headers=account.headers)
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_invitations_die_with_their_inviters_authority(api: Api) -> None:
    owner, co_owner = api.register("Owner"), api.register("CoOwner")
    ws = api.personal_workspace(owner)
    join(api, owner, ws, co_owner, "owner")
    removed, demoted = api.register("ViaRemoved"), api.register("ViaDemoted")
    via_removed = _invite(api, co_owner, ws, removed.email, "owner")
    # The co-owner is removed: what they sent as an owner is void.
    r = api.client.delete(f"{API}/workspaces/{ws}/members/{co_owner.id}", headers=owner.headers)
    assert r.status_code == 204
    assert _accept(api, removed, via_removed).status_code == 404
    pending = api.client.get(f"{API}/workspaces/{ws}/invitations", headers=owner.headers)
    assert pending.json()["items"] == []
    # Demoted from owner: the same.
    join(api, owner, ws, co_owner, "owner")
    via_demoted = _invite(api, co_owner, ws, demoted.email, "editor")
    r = api.client.patch(
        f"{API}/workspaces/{ws}/members/{co_owner.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert r.status_code == 200
    assert _accept(api, demoted, via_demoted).status_code == 404


def test_a_deactivated_inviters_invitations_are_void(api: Api) -> None:
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with api.variant(admin_emails=[admin_email]) as app:
        r = app.client.post(
            f"{API}/auth/register",
            json={"email": admin_email, "password": "admin password 1", "name": "Admin"},
        )
        admin = Account(r.json()["user"], r.json()["access_token"], admin_email, "x")
        verify_email(app, admin.id)
        leaver, invitee = app.register("Leaver"), app.register("Invitee")
        token = _invite(app, leaver, app.personal_workspace(leaver), invitee.email, "owner")
        r = app.client.post(f"{API}/admin/users/{leaver.id}/deactivate", headers=admin.headers)
        assert r.status_code == 200
        assert _accept(app, invitee, token).status_code == 404


def test_api_keys_cannot_change_memberships_or_roles(api: Api) -> None:
    owner, member, stranger = api.register("KeyOwner"), api.register("Member"), api.register("X")
    ws = api.personal_workspace(owner)
    join(api, owner, ws, member, "viewer")
    key = _key(api, owner)
    assert api.client.get(f"{API}/workspaces/{ws}/members", headers=key).status_code == 200
    attempts = [
        ("POST", f"/workspaces/{ws}/members", {"email": stranger.email, "role": "owner"}),
        ("POST", f"/workspaces/{ws}/invitations", {"email": stranger.email, "role": "owner"}),
        ("PATCH", f"/workspaces/{ws}/members/{member.id}", {"role": "owner"}),
        ("DELETE", f"/workspaces/{ws}/members/{member.id}", None),
    ]
    for method, path, body in attempts:
        r = api.client.request(method, f"{API}{path}", json=body, headers=key)
        assert r.status_code == 403, (method, path, r.text)
        assert "API key" in r.json()["detail"]
    roles = api.client.get(f"{API}/workspaces/{ws}/members", headers=owner.headers).json()
    assert {m["user_id"]: m["role"] for m in roles["items"]} == {
        owner.id: "owner",
        member.id: "viewer",
    }
