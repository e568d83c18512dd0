"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from charterflow.db import Base
from charterflow.models.audit import AuditEvent
from charterflow.models.base import new_id, utcnow
from charterflow.models.charter import Charter, CharterVersion
from charterflow.models.chunk import Chunk
from charterflow.models.conversation import Conversation, Message, TurnStatus
from charterflow.models.document import Document, DocumentStage, DocumentStatus, stage_of
from charterflow.models.identity import ApiToken, Invitation, PasswordReset
from charterflow.models.note import Note
from charterflow.models.notebook import Notebook
from charterflow.models.session import RevokedToken
from charterflow.models.user import User
from charterflow.models.workspace import Membership, Role, Workspace

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Charter",
    "CharterVersion",
    "Chunk",
    "Conversation",
    "Document",
    "DocumentStage",
    "DocumentStatus",
    "Invitation",
    "Membership",
    "Message",
    "Note",
    "Notebook",
    "PasswordReset",
    "RevokedToken",
    "Role",
    "TurnStatus",
    "User",
    "Workspace",
    "new_id",
    "stage_of",
    "utcnow",
]
