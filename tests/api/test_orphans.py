"""The storage lifecycle sweep on both backends (local files with SQLite, moto's S3 with
PostgreSQL): objects no document names are removed once old enough, and counted; documents'
objects and young orphans (an upload may still be committing) stay."""

from __future__ import annotations

import io
from datetime import timedelta

from charterflow.ingest import metrics
from charterflow.ingest.orphans import sweep_orphans
from charterflow.models import utcnow

from tests.api.conftest import Api

HOUR = timedelta(hours=1)


def removed_total() -> float:
    return metrics.registry.get_sample_value("charterflow_storage_orphans_removed_total") or 0.0


def test_old_orphans_go_documents_and_young_orphans_stay(api: Api) -> None:
    owner = api.register("Orla")
    nb = api.notebook(owner)
    kept = api.upload(owner, nb["id"], "kept.txt", b"A document that has its row.")
    assert kept.status_code == 202, kept.text
    document_key = f"documents/{kept.json()['id']}"
    orphan = "documents/orphan-left-by-a-crash"
    api.storage.put(orphan, io.BytesIO(b"x" * 1234), content_type="text/plain")
    before = api.stored_keys()
    assert {document_key, orphan} <= before
    removed_before = removed_total()

    # Just written: younger than the safe age, so the sweep leaves it.
    young = sweep_orphans(api.app.state.session_factory, api.storage, HOUR)
    assert orphan not in young.removed
    assert young.kept_young >= 1
    assert orphan in api.stored_keys()

    # Two hours later it is an orphan past the safe age; the document's object stays.
    later = sweep_orphans(api.app.state.session_factory, api.storage, HOUR, now=utcnow() + 2 * HOUR)
    assert orphan in later.removed
    assert document_key not in later.removed
    assert later.bytes_removed >= 1234
    after = api.stored_keys()
    assert orphan not in after
    assert document_key in after
    assert removed_total() - removed_before == len(later.removed)
    content = api.client.get(
        f"/api/v1/documents/{kept.json()['id']}/content", headers=owner.headers
    )
    assert content.status_code == 200
