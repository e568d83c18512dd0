"""Users: ``email_verified_at``, when the account holder proved they own the email.

Linking a single sign-on identity to an account, and admin by ``ADMIN_EMAILS``, need it
(issue 26). Nullable, no default: adding it rewrites nothing. Accounts made by single sign-on
(no usable password; the provider asserted the email) are marked verified as of their creation;
password accounts stay unverified until their holder follows an emailed link (or resets the
password, or an operator runs ``charterflow verify-email``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
Phase: expand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    # Single sign-on accounts have the unusable password "!" (never an argon2 "$..." hash).
    op.execute(
        "UPDATE users SET email_verified_at = created_at "
        "WHERE email_verified_at IS NULL AND password_hash NOT LIKE '$%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified_at")
