"""``/api/v1``: every resource router is included here, each request rate-limited by client."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from charterflow.api.deps import limit_by_ip
from charterflow.api.routes import (
    admin,
    auth,
    charters,
    conversations,
    documents,
    invitations,
    notebooks,
    notes,
    oidc,
    search,
    workspaces,
)

api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(limit_by_ip)])
api_router.include_router(auth.router)
api_router.include_router(workspaces.router)
api_router.include_router(notebooks.router)
api_router.include_router(documents.router)
api_router.include_router(search.router)
api_router.include_router(conversations.router)
api_router.include_router(notes.router)
api_router.include_router(admin.router)
api_router.include_router(invitations.router)
api_router.include_router(oidc.router)
api_router.include_router(charters.router)
