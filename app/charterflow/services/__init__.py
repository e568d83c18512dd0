"""Business logic that routers call: audit trail, uploads, file type detection."""
