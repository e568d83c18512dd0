// The notebook page: drag-and-drop uploads with progress, live ingestion status, search, and
// the passage dialog that citations open (workbench.js adds the conversation and charters).
"use strict";

(() => {
  const { api, csrfToken, describeError, showError } = window.CharterFlow;
  const root = document.getElementById("notebook");
  const notebookId = encodeURIComponent(root.dataset.notebookId);
  const base = `/api/v1/notebooks/${notebookId}`;
  const maxUpload = Number(root.dataset.maxUpload);
  const documents = document.getElementById("documents");
  const documentsEmpty = document.getElementById("documents-empty");
  const documentsError = document.getElementById("documents-error");
  const rowTemplate = document.getElementById("document-row");
  const UNSETTLED = new Set(["pending", "processing"]);
  const POLL_MS = 1500;
  const PAGE_SIZE = 100; // the API's largest page
  const more = document.getElementById("documents-more");
  // Rows that came from the listing (the server's first page, then "Show more" pages), in
  // its order; rows of files uploaded here are added too but do not move the next offset.
  let listed = documents.children.length;
  let total = Number(root.dataset.documentsTotal);

  const field = (el, name) => el.querySelector(`[data-field="${name}"]`);

  // Decimal units, as the server-rendered rows show them (Jinja's filesizeformat).
  function formatBytes(n) {
    if (n < 1000) return `${n} Bytes`;
    const units = ["kB", "MB", "GB"];
    let value = n / 1000;
    let i = 0;
    while (value >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
    return `${value.toFixed(1)} ${units[i]}`;
  }

  // ---- documents and their status -------------------------------------------------------
  function fillRow(row, doc) {
    row.dataset.documentId = doc.id;
    row.dataset.status = doc.status;
    field(row, "title").textContent = doc.title;
    field(row, "meta").textContent = `${doc.filename} · ${formatBytes(doc.size_bytes)}`;
    const error = field(row, "error");
    error.textContent = doc.error || "";
    error.hidden = !doc.error;
    field(row, "status").textContent = doc.status;
    const download = field(row, "download");
    download.href = `/api/v1/documents/${encodeURIComponent(doc.id)}/content`;
    download.setAttribute("aria-label", `Download ${doc.title}`);
    const remove = row.querySelector('[data-action="delete"]');
    if (remove) remove.setAttribute("aria-label", `Delete ${doc.title}`);
  }

  function upsertDocument(doc) {
    let row = [...documents.children].find((r) => r.dataset.documentId === doc.id);
    if (!row) {
      row = rowTemplate.content.firstElementChild.cloneNode(true);
      documents.append(row);
    }
    fillRow(row, doc);
    documentsEmpty.hidden = true;
  }

  let pollTimer = null;
  function schedulePoll(delay = POLL_MS) {
    const waiting = [...documents.children].some((r) => UNSETTLED.has(r.dataset.status));
    if (waiting && pollTimer === null) pollTimer = setTimeout(poll, delay);
  }

  function showCount() {
    document.getElementById("documents-shown").textContent = String(documents.children.length);
    document.getElementById("documents-total").textContent = String(total);
    more.hidden = listed >= total || documents.children.length >= total;
  }

  async function listPage(offset) {
    const page = await api("GET", `${base}/documents?limit=${PAGE_SIZE}&offset=${offset}`);
    page.items.forEach(upsertDocument);
    total = page.total;
    return page.items.length;
  }

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      listed += await listPage(listed);
      showError(documentsError, "");
    } catch (err) {
      showError(documentsError, `Could not load more documents. ${err.message}`, err.status);
    } finally {
      more.disabled = false;
      showCount();
    }
  });

  async function poll() {
    pollTimer = null;
    try {
      // Every page that is shown, so that a row past the first hundred updates too.
      for (let offset = 0; offset < Math.max(listed, 1); offset += PAGE_SIZE) {
        await listPage(offset);
      }
      showCount();
      showError(documentsError, "");
    } catch (err) {
      showError(documentsError, `Could not refresh the status. ${err.message}`, err.status);
      if (err.status === 401 || err.status === 404) return;
      schedulePoll(Math.max(POLL_MS, err.retryAfter * 1000));
      return;
    }
    schedulePoll();
  }

  documents.addEventListener("click", async (event) => {
    const button = event.target.closest('[data-action="delete"]');
    if (!button) return;
    const row = button.closest(".document");
    const title = field(row, "title").textContent;
    if (!window.confirm(`Delete “${title}” and its passages?`)) return;
    button.disabled = true;
    try {
      await api("DELETE", `/api/v1/documents/${encodeURIComponent(row.dataset.documentId)}`);
      row.remove();
      total = Math.max(0, total - 1);
      listed = Math.max(0, listed - 1); // re-reading a row is harmless, skipping one is not
      showCount();
      documentsEmpty.hidden = documents.children.length > 0;
      showError(documentsError, "");
    } catch (err) {
      showError(documentsError, err.message, err.status);
      button.disabled = false;
    }
  });

  // ---- uploads: one XHR per file, for its progress events ------------------------------
  const uploads = document.getElementById("uploads");

  function uploadFile(file) {
    const item = document.createElement("li");
    item.className = "upload";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", `Upload of ${file.name}`);
    const state = document.createElement("span");
    state.className = "upload-state";
    state.setAttribute("role", "status");
    item.append(name, progress, state);
    uploads.append(item);

    const fail = (message) => {
      item.dataset.state = "failed";
      state.textContent = message;
      state.setAttribute("role", "alert");
    };
    if (file.size > maxUpload) {
      fail(describeError(413, { detail: `the limit is ${formatBytes(maxUpload)}` }));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${base}/documents`);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    item.dataset.state = "uploading";
    state.textContent = "0%";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      progress.value = percent;
      state.textContent = `${percent}%`;
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 202) {
        progress.value = 100;
        item.dataset.state = "done";
        state.textContent = "Uploaded; processing starts shortly.";
        upsertDocument(xhr.response);
        schedulePoll();
      } else {
        fail(describeError(xhr.status, xhr.response, xhr.getResponseHeader("Retry-After")));
      }
    });
    xhr.addEventListener("error", () => fail(describeError(0)));
    const body = new FormData();
    body.append("file", file);
    xhr.send(body);
  }

  const dropzone = document.getElementById("dropzone");
  if (dropzone) {
    const input = document.getElementById("file-input");
    input.addEventListener("change", () => {
      [...input.files].forEach(uploadFile);
      input.value = "";
    });
    for (const type of ["dragenter", "dragover"]) {
      dropzone.addEventListener(type, (e) => { e.preventDefault(); dropzone.classList.add("over"); });
    }
    dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
    dropzone.addEventListener("drop", (e) => {
      e.preventDefault();
      dropzone.classList.remove("over");
      [...e.dataTransfer.files].forEach(uploadFile);
    });
    // A file dropped beside the zone must not make the browser navigate away to it.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
  }

  // ---- passages: citations and search results open the same dialog ---------------------
  const dialog = document.getElementById("passage");
  const passageTemplate = document.getElementById("passage-link");
  dialog.querySelector('[data-action="close"]').addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });

  function where(p) {
    const parts = [];
    if (p.page) parts.push(`Page ${p.page}`);
    if (Number.isInteger(p.start) && Number.isInteger(p.end)) parts.push(`characters ${p.start}–${p.end}`);
    if (typeof p.score === "number") parts.push(`score ${p.score.toFixed(3)}`);
    return parts.join(" · ");
  }

  function openPassage(p) {
    field(dialog, "title").textContent = p.document_title || "Source passage";
    field(dialog, "where").textContent = where(p);
    field(dialog, "text").textContent = p.text;
    field(dialog, "download").href = `/api/v1/documents/${encodeURIComponent(p.document_id)}/content`;
    dialog.showModal();
  }

  function passageItem(p, label) {
    const item = passageTemplate.content.firstElementChild.cloneNode(true);
    field(item, "label").textContent = label;
    const snippet = p.text.length > 220 ? `${p.text.slice(0, 220)}…` : p.text;
    field(item, "snippet").textContent = snippet;
    item.querySelector("button").addEventListener("click", () => openPassage(p));
    return item;
  }

  const label = (p, i) => `[${i + 1}] ${p.document_title}${p.page ? `, page ${p.page}` : ""}`;

  // ---- search ------------------------------------------------------------------------------
  const searchForm = document.getElementById("search-form");
  const results = document.getElementById("search-results");
  const searchEmpty = document.getElementById("search-empty");
  searchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errorEl = searchForm.querySelector(".form-error");
    const q = searchForm.elements.q.value.trim();
    if (!q) return;
    showError(errorEl, "");
    try {
      const body = await api("GET", `${base}/search?${new URLSearchParams({ q, limit: "10" })}`);
      const hits = body.items;
      results.replaceChildren(...hits.map((h, i) => passageItem(h, label(h, i))));
      searchEmpty.hidden = hits.length > 0;
    } catch (err) {
      showError(errorEl, err.message, err.status);
    }
  });

  schedulePoll();
  // For workbench.js (conversation, notes, charters, URL sources).
  window.CharterFlow.notebook = { base, field, label, passageItem, schedulePoll, upsertDocument };
})();
