"""A client generated from the running server's /openapi.json by openapi-python-client, used
as a client developer would: register → upload → conversation → charter export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.support import clientgen

USE = r"""
import io, json, sys, time, uuid
from charter_flow_client import AuthenticatedClient, Client
from charter_flow_client.api.auth import auth_register
from charter_flow_client.api.charters import charters_create_charter, charters_export_charter
from charter_flow_client.api.conversations import (
    conversations_ask, conversations_create_conversation,
)
from charter_flow_client.api.documents import documents_get_document
from charter_flow_client.api.notebooks import notebooks_create_notebook, notebooks_upload_document
from charter_flow_client.models import (
    BodyNotebooksUploadDocument, CharterIn, CharterInTemplate, ConversationIn, MessageIn,
    NotebookIn, RegisterIn,
)
from charter_flow_client.types import File

base = sys.argv[1]
email = f"gen-{uuid.uuid4().hex[:8]}@example.com"
account = auth_register.sync(
    client=Client(base_url=base),
    body=RegisterIn(email=email, password="correct horse battery staple", name="Gen"),
)
api = AuthenticatedClient(base_url=base, token=account.access_token)
notebook = notebooks_create_notebook.sync(client=api, body=NotebookIn(title="Generated"))
brief = (
    b"Harbor intake brief.\n"
    b"The problem is that volunteers lose track of donated food because intake is on paper.\n"
    b"Our users are the pantry volunteers and the warehouse coordinators.\n"
    b"The main risk is unreliable network coverage in the warehouse.\n"
)
upload = notebooks_upload_document.sync_detailed(
    notebook.id,
    client=api,
    body=BodyNotebooksUploadDocument(file=File(payload=io.BytesIO(brief), file_name="brief.txt")),
)
assert upload.status_code == 202, (upload.status_code, upload.content)
document = upload.parsed
deadline = time.monotonic() + 60
while document.status.value not in ("ready", "failed") and time.monotonic() < deadline:
    time.sleep(0.2)
    document = documents_get_document.sync(document.id, client=api)
conversation = conversations_create_conversation.sync(
    notebook.id, client=api, body=ConversationIn()
)
turn = conversations_ask.sync(
    conversation.id, client=api, body=MessageIn(question="Who are the users?")
)
charter = charters_create_charter.sync(
    notebook.id,
    client=api,
    body=CharterIn(template=CharterInTemplate.PRODUCT_CHARTER, title="Harbor intake"),
)
export = charters_export_charter.sync_detailed(charter.id, client=api)
print(json.dumps({
    "document": [document.status.value, document.size_bytes],
    "answer": turn.answer,
    "cited": [c.document_title for c in turn.citations],
    "sections": [s.status.value for s in charter.sections],
    "export": [export.status_code, export.headers["content-type"], export.content.decode()],
}))
"""


@pytest.fixture(scope="module")
def client_dir(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clientgen.generate(f"{api.url}/openapi.json", tmp_path_factory.mktemp("gen") / "c")


def test_a_generated_client_uploads_asks_and_exports_a_charter(api: Api, client_dir: Path) -> None:
    ids = [path.stem for path in (client_dir / "charter_flow_client" / "api").rglob("*_*.py")]
    assert "notebooks_upload_document" in ids  # named after the stable operationId
    done = clientgen.run(USE, client_dir, api.url)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["document"][0] == "ready"
    assert out["document"][1] > 100  # the file's bytes arrived as a file, not as a string
    assert "pantry volunteers" in out["answer"]
    assert out["cited"] == ["brief"]
    assert out["sections"][:2] == ["drafted", "drafted"]
    status, content_type, markdown = out["export"]
    assert status == 200
    assert content_type.startswith("text/markdown")
    assert markdown.startswith("# Harbor intake\n")
    assert "\n## References\n\n1. brief — " in markdown
