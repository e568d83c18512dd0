"""Accounts and tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints, field_validator

from charterflow.schemas.common import Name, ORMModel, Password, one_line, storable

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
    email_verified: bool = Field(
        description="The holder proved they own the email (an emailed link, a password reset "
        "or single sign-on)."
    )
    created_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


class RegisterOut(TokenOut):
    user: UserOut


class ApiTokenIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    expires_at: datetime | None = Field(
        None, description="When the key stops working (timezone-aware, in the future); none: never."
    )
    read_only: bool = Field(False, description="Only GET/HEAD requests are allowed with it.")

    @field_validator("name")
    @classmethod
    def _storable(cls, value: str) -> str:
        return one_line(storable(value))

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must include a timezone")
        if value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class ApiTokenOut(ORMModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    read_only: bool
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute.")
    created_at: datetime


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="The key itself: shown this once, never again.")


class PasswordChangeIn(BaseModel):
    current_password: Annotated[
        str, StringConstraints(min_length=1, max_length=256), AfterValidator(storable)
    ]
    new_password: Password


class AdminUserOut(ORMModel):
    id: str
    email: str
    name: str
    is_active: bool
    is_admin: bool
    created_at: datetime


class PasswordResetIn(BaseModel):
    email: Email


class PasswordResetConfirmIn(BaseModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    new_password: Password


class AcceptedOut(BaseModel):
    detail: str


class VerifyEmailIn(BaseModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
