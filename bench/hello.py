"""The baseline: a bare FastAPI app on the same uvicorn, answering what ``/health/live`` does."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
