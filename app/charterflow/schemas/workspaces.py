"""Workspaces, members and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from charterflow.models import Role
from charterflow.schemas.auth import Email
from charterflow.schemas.common import Name, ORMModel


class WorkspaceIn(BaseModel):
    name: Name


class WorkspaceOut(ORMModel):
    id: str
    name: str
    personal: bool
    role: Role  # the caller's role here
    created_at: datetime
    updated_at: datetime


class MemberIn(BaseModel):
    email: Email
    role: Role


class MemberUpdate(BaseModel):
    role: Role


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str
    role: Role
    created_at: datetime


class AuditEventOut(ORMModel):
    id: str
    workspace_id: str | None
    actor_id: str | None
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    detail: dict[str, Any]
    created_at: datetime


class InvitationIn(BaseModel):
    email: Email
    role: Role


class InvitationOut(ORMModel):
    id: str
    workspace_id: str
    email: str
    role: Role
    expires_at: datetime
    created_at: datetime


class InvitationCreated(InvitationOut):
    emailed: bool = Field(description="Whether the link was sent by email (SMTP configured).")
    invite_url: str | None = Field(
        None,
        description="The single-use link, shown only when it could not be emailed, so the "
        "owner can pass it on.",
    )


class InvitationAcceptedOut(BaseModel):
    workspace_id: str
    role: Role


class InvitationAcceptIn(BaseModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
