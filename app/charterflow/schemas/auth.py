"""Accounts and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints

from charterflow.schemas.common import Name, ORMModel, Password, storable

Email = Annotated[EmailStr, AfterValidator(str.lower)]


class RegisterIn(BaseModel):
    email: Email
    password: Password
    name: Name


class LoginIn(BaseModel):
    email: Email
    password: Annotated[
        str, StringConstraints(min_length=1, max_length=256), AfterValidator(storable)
    ]


class UserOut(ORMModel):
    id: str
    email: str
    name: str
    created_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


class RegisterOut(TokenOut):
    user: UserOut
