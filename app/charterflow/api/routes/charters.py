"""Charters drafted from a notebook's sources: sections, edits, redrafts, versions, export.

Charters are notebook content like notes: members read them, editors write them (403 for
viewers), outside the caller's workspaces everything is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from sqlalchemy import select

from charterflow.api.deps import (
    AppSettings,
    CurrentUser,
    DbSession,
    PageParams,
    ReadableCharter,
    ReadableNotebook,
    WritableCharter,
    WritableNotebook,
    paginate,
)
from charterflow.api.errors import AUTHED, errors
from charterflow.models import Charter, CharterVersion
from charterflow.schemas.charters import (
    CharterIn,
    CharterOut,
    CharterUpdate,
    CharterVersionOut,
    CharterVersionSummary,
    RegenerateIn,
    SectionUpdate,
)
from charterflow.schemas.common import Page
from charterflow.services import audit, charters, citation_check, quota
from charterflow.services.markdown import download_name

router = APIRouter(tags=["charters"])
SectionKey = Annotated[str, Path(max_length=40, description="A section of the template.")]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


def _audit(
    db: DbSession, request: Request, action: str, charter: Charter, user_id: str, **extra: Any
) -> None:
    audit.record(
        db,
        request,
        f"charter.{action}",
        target_type="charter",
        target_id=charter.id,
        workspace_id=charter.workspace_id,
        actor_id=user_id,
        **extra,
    )


def _section(charter: Charter, key: str) -> tuple[charters.Template, charters.SectionSpec]:
    template = charters.TEMPLATES[charter.template]
    spec = template.section(key)
    if spec is None or not any(s["key"] == key for s in charter.sections):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Section not found")
    return template, spec


@router.get(
    "/notebooks/{notebook_id}/charters",
    response_model=Page[CharterOut],
    responses=errors(*AUTHED),
    summary="Charters of a notebook",
)
def list_charters(notebook: ReadableNotebook, db: DbSession, page: PageParams) -> Page[CharterOut]:
    stmt = (
        select(Charter)
        .where(Charter.notebook_id == notebook.id)
        .order_by(Charter.created_at, Charter.id)
    )
    return paginate(db, stmt, page, CharterOut.model_validate)


@router.post(
    "/notebooks/{notebook_id}/charters",
    status_code=status.HTTP_201_CREATED,
    response_model=CharterOut,
    responses=errors(*AUTHED, 403, 409),
    summary="Draft a charter from the notebook's sources, every section cited (editors)",
)
def create_charter(
    notebook: WritableNotebook,
    body: CharterIn,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Charter:
    template = charters.TEMPLATES[body.template]
    charter = Charter(
        workspace_id=notebook.workspace_id,
        notebook_id=notebook.id,
        template=template.key,
        title=body.title,
        sections=charters.draft(db, settings, notebook.id, template, body.title),
        version=1,
        created_by=user.id,
    )
    db.add(charter)
    db.flush()
    charters.record_version(db, charter, user.id, "draft")
    quota.refuse_if_over(db, charter.workspace_id, settings)
    _audit(db, request, "create", charter, user.id, template=template.key)
    db.commit()
    return charter


@router.get(
    "/charters/{charter_id}", response_model=CharterOut, responses=errors(*AUTHED), summary="One"
)
def get_charter(charter: ReadableCharter) -> Charter:
    return charter


@router.patch(
    "/charters/{charter_id}",
    response_model=CharterOut,
    responses=errors(*AUTHED, 403, 409),
    summary="Rename (editors); a new version",
)
def update_charter(
    charter: WritableCharter,
    body: CharterUpdate,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Charter:
    def rename(c: Charter) -> None:
        c.title = body.title

    charters.save(db, charter, user.id, "title", rename)
    quota.refuse_if_over(db, charter.workspace_id, settings)
    _audit(db, request, "update", charter, user.id, fields=["title"])
    db.commit()
    return charter


@router.delete(
    "/charters/{charter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403),
    summary="Delete with its versions (editors)",
)
def delete_charter(
    charter: WritableCharter, request: Request, db: DbSession, user: CurrentUser
) -> Response:
    db.delete(charter)
    _audit(db, request, "delete", charter, user.id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/charters/{charter_id}/sections/{key}",
    response_model=CharterOut,
    responses=errors(*AUTHED, 400, 403, 409),
    summary="Edit one section; citations it no longer cites are dropped unless kept (editors)",
)
def edit_section(
    charter: WritableCharter,
    key: SectionKey,
    body: SectionUpdate,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Charter:
    _section(charter, key)

    def edit(c: Charter) -> None:
        current = next(s for s in c.sections if s["key"] == key)
        given = body.citations
        explicit: list[dict[str, Any]] | None = None
        if isinstance(given, list):  # checked against the notebook's chunks, quotes rebuilt
            explicit = citation_check.resolve(db, c.notebook_id, [x.model_dump() for x in given])
        elif given == "drop":
            explicit = []
        try:
            text, cited = charters.edited_citations(
                body.body,
                list(current["citations"]),
                "keep" if given == "keep" else body.citations_policy,
                explicit,
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        edited = {**current, "body": text.strip(), "citations": cited, "status": "edited"}
        edited["warning"] = None
        c.sections = charters.replace_section(c.sections, edited)

    charters.save(db, charter, user.id, f"edit:{key}", edit)
    quota.refuse_if_over(db, charter.workspace_id, settings)
    _audit(db, request, "section.update", charter, user.id, section=key)
    db.commit()
    return charter


@router.post(
    "/charters/{charter_id}/sections/{key}/regenerate",
    response_model=CharterOut,
    responses=errors(*AUTHED, 403, 409),
    summary="Draft one section again from the sources (editors)",
)
def regenerate_section(
    charter: WritableCharter,
    key: SectionKey,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    body: RegenerateIn | None = None,
) -> Charter:
    template, spec = _section(charter, key)
    new = charters.draft_section(
        db, settings, charter.notebook_id, template, spec, charter.title, body and body.query
    )

    def redraft(c: Charter) -> None:
        c.sections = charters.replace_section(c.sections, new)

    charters.save(db, charter, user.id, f"regenerate:{key}", redraft)
    quota.refuse_if_over(db, charter.workspace_id, settings)
    _audit(db, request, "section.regenerate", charter, user.id, section=key)
    db.commit()
    return charter


@router.get(
    "/charters/{charter_id}/versions",
    response_model=Page[CharterVersionSummary],
    responses=errors(*AUTHED),
    summary="Saved versions, oldest first",
)
def list_versions(
    charter: ReadableCharter, db: DbSession, page: PageParams
) -> Page[CharterVersionSummary]:
    stmt = (
        select(CharterVersion)
        .where(CharterVersion.charter_id == charter.id)
        .order_by(CharterVersion.number)
    )
    return paginate(db, stmt, page, CharterVersionSummary.model_validate)


def _version(db: DbSession, charter: Charter, number: int) -> CharterVersion:
    found = db.scalar(
        select(CharterVersion).where(
            CharterVersion.charter_id == charter.id, CharterVersion.number == number
        )
    )
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Version not found")
    return found


@router.get(
    "/charters/{charter_id}/versions/{number}",
    response_model=CharterVersionOut,
    responses=errors(*AUTHED),
    summary="One saved version, whole",
)
def get_version(
    charter: ReadableCharter, number: VersionNumber, db: DbSession
) -> CharterVersionOut:
    found = _version(db, charter, number)
    summary = CharterVersionSummary.model_validate(found).model_dump()
    return CharterVersionOut(**summary, sections=charters.whole_sections(db, found))


@router.post(
    "/charters/{charter_id}/versions/{number}/restore",
    response_model=CharterOut,
    responses=errors(*AUTHED, 403, 409),
    summary="Make an earlier version current again, as a new version (editors)",
)
def restore_version(
    charter: WritableCharter,
    number: VersionNumber,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Charter:
    old = _version(db, charter, number)
    sections = charters.whole_sections(db, old)

    def restore(c: Charter) -> None:
        c.title = old.title
        c.sections = sections

    charters.save(db, charter, user.id, f"restore:{number}", restore, restored=old)
    quota.refuse_if_over(db, charter.workspace_id, settings)
    _audit(db, request, "restore", charter, user.id, version=number)
    db.commit()
    return charter


@router.get(
    "/charters/{charter_id}/export",
    response_class=Response,
    responses={
        200: {"description": "The charter as Markdown", "content": {"text/markdown": {}}},
        **errors(*AUTHED),
    },
    summary="The charter as Markdown with numbered references (document title, page)",
)
def export_charter(charter: ReadableCharter) -> Response:
    return Response(
        charters.to_markdown(charter),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{download_name(charter.title)}"'},
    )
