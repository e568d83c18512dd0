"""People who sign in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import IdMixin, TimestampMixin, UTCDateTime


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)  # lower-cased
    name: Mapped[str] = mapped_column(String, nullable=False)
    password_hash: Mapped[str] = mapped_column(String, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Bumped by a password change, sign-out everywhere and deactivation: access tokens carry
    # the value they were signed with (`ver`), so every older one is refused at once.
    token_version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # When the holder proved they own ``email`` (an emailed link, a password reset, or the
    # identity provider). Linking single sign-on and ADMIN_EMAILS need it (deps.is_admin).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def has_password(self) -> bool:
        """An argon2 hash; single sign-on accounts hold an unusable placeholder instead."""
        return self.password_hash.startswith("$")

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None
