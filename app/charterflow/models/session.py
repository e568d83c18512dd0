"""Access tokens revoked before they expire (sign-out), so a copied cookie stops working."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, UTCDateTime


class RevokedToken(Base):
    """One revoked token's ``jti``; kept until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
