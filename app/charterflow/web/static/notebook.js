// The notebook page: drag-and-drop uploads with progress, each document's real ingestion stage,
// search, the text preview of a source, and the citation view: the cited sentence highlighted
// in its paragraph, and for a PDF the cited page (pdfview.js). workbench.js adds the
// conversation and charters.
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

  // ---- documents and their stage ---------------------------------------------------------
  // `stage`/`progress` say what ingestion is doing; a server without them still has `status`.
  const STATUS_LABELS = { pending: "Queued", processing: "Processing", ready: "Ready", failed: "Failed" };

  function stageLabel(doc) {
    const p = doc.progress && doc.progress.total > 0 ? doc.progress : null;
    switch (doc.stage) {
      case "queued": return "Queued";
      case "reading":
        return p ? `Reading page ${Math.min(p.done + 1, p.total)} of ${p.total}` : "Reading";
      case "chunking": return "Splitting into passages";
      case "embedding": return p ? `Embedding passages: ${p.done} of ${p.total}` : "Embedding passages";
      case "ready": return "Ready";
      case "failed": return "Failed";
      default: return STATUS_LABELS[doc.status] || doc.status;
    }
  }

  function fillRow(row, doc) {
    row.dataset.documentId = doc.id;
    row.dataset.status = doc.status;
    row.dataset.stage = doc.stage || "";
    row.dataset.mediaType = doc.media_type || "";
    field(row, "title").textContent = doc.title;
    field(row, "meta").textContent = `${doc.filename} · ${formatBytes(doc.size_bytes)}`;
    const error = field(row, "error");
    error.textContent = doc.error || "";
    error.hidden = !doc.error;
    field(row, "status").textContent = stageLabel(doc);
    const bar = field(row, "progress");
    const p = doc.progress;
    bar.hidden = !(UNSETTLED.has(doc.status) && p && p.total > 0);
    if (!bar.hidden) {
      bar.max = p.total;
      bar.value = Math.min(p.done, p.total);
      bar.setAttribute("aria-label", `${stageLabel(doc)}: ${doc.title}`);
    }
    const preview = row.querySelector('[data-action="preview"]');
    preview.hidden = doc.status !== "ready";
    preview.setAttribute("aria-label", `Preview the text of ${doc.title}`);
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
    showUploadStage(doc);
    listeners.forEach((listen) => listen(doc));
  }
  // Others who follow the documents (the "ask only these" choices): called with each update.
  const listeners = [];
  const rowDocument = (row) => ({
    id: row.dataset.documentId,
    title: field(row, "title").textContent,
    status: row.dataset.status,
    media_type: row.dataset.mediaType,
  });
  const shownDocuments = () => [...documents.children].map(rowDocument);

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
    const previewButton = event.target.closest('[data-action="preview"]');
    if (previewButton) {
      const row = previewButton.closest(".document");
      openPreview(rowDocument(row), null, previewButton);
      return;
    }
    const button = event.target.closest('[data-action="delete"]');
    if (!button) return;
    const row = button.closest(".document");
    const title = field(row, "title").textContent;
    if (!window.confirm(`Delete “${title}” and its passages?`)) return;
    button.disabled = true;
    try {
      await api("DELETE", `/api/v1/documents/${encodeURIComponent(row.dataset.documentId)}`);
      row.remove();
      listeners.forEach((listen) => listen({ id: row.dataset.documentId, deleted: true }));
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
  // Once a file is stored its item follows the document's real stage until it is ready or
  // failed (the documents are polled), so the two lists always agree.
  const uploads = document.getElementById("uploads");

  function showUploadStage(doc) {
    if (!uploads) return;
    for (const item of uploads.querySelectorAll(".upload")) {
      if (item.dataset.documentId !== doc.id) continue;
      const state = item.querySelector(".upload-state");
      if (doc.status === "ready") {
        item.dataset.state = "ready";
        state.textContent = "Uploaded · Ready: it can be searched and asked about.";
      } else if (doc.status === "failed") {
        item.dataset.state = "failed";
        state.textContent = `Uploaded · Failed: ${doc.error || "it could not be read."}`;
      } else {
        item.dataset.state = "processing";
        state.textContent = `Uploaded · ${stageLabel(doc)}`;
      }
    }
  }

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
        item.dataset.documentId = xhr.response.id;
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

  // ---- text of a document: blocks as paragraphs ---------------------------------------------
  const docUrl = (id) => `/api/v1/documents/${encodeURIComponent(id)}`;

  // One <p> per blank-line-delimited block of `text` (which begins at document offset
  // `offset`): the document span `mark` ([start, end)) in <mark>, a "Page n" heading before
  // the block where a page of `pages` ({page, start}) begins, "…" where a side was clipped.
  function blockElements(text, offset, { mark = null, pages = [], clippedStart = false, clippedEnd = false } = {}) {
    const out = [];
    const raw = text.split("\n\n");
    let at = offset;
    let pending = [];
    raw.forEach((piece, i) => {
      const begin = at;
      at += piece.length + 2;
      pending.push(...pages.filter((p) => p.start >= begin && p.start < at));
      const lead = piece.length - piece.trimStart().length;
      const block = piece.trim();
      if (!block) return;
      for (const p of pending) {
        const heading = document.createElement("h3");
        heading.className = "page-mark";
        heading.textContent = `Page ${p.page}`;
        out.push(heading);
      }
      pending = [];
      const para = document.createElement("p");
      const before = i === 0 && clippedStart ? "… " : "";
      const after = i === raw.length - 1 && clippedEnd ? " …" : "";
      const s = mark ? Math.max(mark[0] - begin - lead, 0) : 0;
      const e = mark ? Math.min(mark[1] - begin - lead, block.length) : 0;
      if (e > s) {
        const highlighted = document.createElement("mark");
        highlighted.textContent = block.slice(s, e);
        para.append(before + block.slice(0, s), highlighted, block.slice(e) + after);
      } else {
        para.append(before + block + after);
      }
      out.push(para);
    });
    return out;
  }

  // What the citation view needs of a document (its type): from its row, else from the API.
  const knownDocuments = new Map();
  function documentInfo(id) {
    const row = [...documents.children].find((r) => r.dataset.documentId === id);
    if (row && row.dataset.mediaType) return Promise.resolve(rowDocument(row));
    if (!knownDocuments.has(id)) knownDocuments.set(id, api("GET", docUrl(id)).catch(() => null));
    return knownDocuments.get(id);
  }

  // ---- the citation view: the cited sentence highlighted in its paragraph --------------------
  const dialog = document.getElementById("passage");
  const passageTemplate = document.getElementById("passage-link");
  const quote = field(dialog, "text");
  const note = field(dialog, "note");
  const pdfSection = field(dialog, "pdf");
  const pdfStage = field(dialog, "pdf-stage");
  const pdfStatus = field(dialog, "pdf-page");
  let current = null; // the citation shown
  let pdfPager = null; // { pages, render(n) } of the PDF shown
  let pdfPage = 1;
  dialog.querySelector('[data-action="close"]').addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => { current = null; pdfPager = null; pdfStage.replaceChildren(); });

  function where(p) {
    const parts = [];
    if (p.page) parts.push(`Page ${p.page}`);
    if (p.heading) parts.push(`Section: ${p.heading}`);
    return parts.join(" · ");
  }

  // The cited span's place in the paragraph: its offsets, checked against its text (which
  // differs only in spacing); else wherever its text occurs; null when it does not.
  const squash = (t) => t.replace(/\s+/g, " ").trim();
  function locate(p, context) {
    const s = p.start - context.offset;
    const e = p.end - context.offset;
    if (s >= 0 && e <= context.text.length && squash(context.text.slice(s, e)) === squash(p.text)) {
      return [p.start, p.end];
    }
    const found = context.text.indexOf(p.text);
    return found >= 0 ? [context.offset + found, context.offset + found + p.text.length] : null;
  }

  async function paragraphOf(p) {
    if (!Number.isInteger(p.start) || !Number.isInteger(p.end)) return null;
    const params = new URLSearchParams({ start: String(p.start), end: String(p.end) });
    try {
      return await api("GET", `${docUrl(p.document_id)}/text?${params}`);
    } catch {
      return null;
    }
  }

  function showPdfStatus(number, pages, found, zoom) {
    pdfPage = number;
    // aria-disabled, not disabled: a focused button that becomes disabled drops focus.
    const off = (action, yes) => pdfSection.querySelector(`[data-action="${action}"]`).setAttribute("aria-disabled", String(yes));
    off("pdf-zoom-out", zoom <= 1);
    off("pdf-zoom-in", zoom >= 5);
    off("pdf-prev", number <= 1);
    off("pdf-next", number >= pages);
    const which = `Page ${number} of ${pages}`;
    if (number !== current?.page) pdfStatus.textContent = which;
    else pdfStatus.textContent = found ? `${which}: the cited passage is highlighted` : `${which}: the passage could not be marked on the page`;
  }

  async function showPdf(p) {
    const viewer = window.CharterFlow.pdfView;
    pdfSection.hidden = false;
    dialog.classList.add("with-pdf");
    pdfStatus.textContent = `Opening page ${p.page}…`;
    try {
      if (!viewer) throw new Error("no viewer");
      const pager = await viewer.show(pdfStage, {
        url: `${docUrl(p.document_id)}/content`, page: p.page, quote: p.text, onPage: showPdfStatus,
      });
      if (current === p) pdfPager = pager;
    } catch {
      if (current !== p) return;
      pdfSection.hidden = true;
      dialog.classList.remove("with-pdf");
      note.textContent = "The PDF viewer is not available here, so the passage is shown as text.";
      note.hidden = false;
    }
  }
  for (const [action, go] of [
    ["pdf-prev", (pager) => pager.render(pdfPage - 1)],
    ["pdf-next", (pager) => pager.render(pdfPage + 1)],
    ["pdf-zoom-out", (pager) => pager.zoom(-1)],
    ["pdf-zoom-in", (pager) => pager.zoom(1)],
  ]) {
    const button = pdfSection.querySelector(`[data-action="${action}"]`);
    button.addEventListener("click", () => {
      if (pdfPager && button.getAttribute("aria-disabled") !== "true") go(pdfPager).catch(() => {});
    });
  }

  async function openPassage(p) {
    current = p;
    pdfPager = null;
    field(dialog, "title").textContent = p.document_title || "Source passage";
    const whereLine = field(dialog, "where");
    whereLine.textContent = where(p);
    whereLine.hidden = !whereLine.textContent;
    quote.replaceChildren(...blockElements(p.text, 0, { mark: [0, p.text.length] }));
    note.hidden = true;
    pdfSection.hidden = true;
    dialog.classList.remove("with-pdf");
    pdfStage.replaceChildren();
    field(dialog, "download").href = `${docUrl(p.document_id)}/content`;
    if (!dialog.open) dialog.showModal();
    quote.setAttribute("aria-busy", "true");
    const [context, info] = await Promise.all([paragraphOf(p), documentInfo(p.document_id)]);
    if (current !== p) return; // another passage was opened meanwhile
    const span = context && locate(p, context);
    if (span) {
      quote.replaceChildren(...blockElements(context.text, context.offset, {
        mark: span, clippedStart: context.clipped_start, clippedEnd: context.clipped_end,
      }));
    } else {
      note.textContent = "Only the quoted passage can be shown: the document's text is not available or has changed.";
      note.hidden = false;
    }
    quote.removeAttribute("aria-busy");
    if (info && info.media_type === "application/pdf" && p.page) await showPdf(p);
  }

  dialog.querySelector('[data-action="preview"]').addEventListener("click", async () => {
    const p = current;
    if (!p) return;
    const info = (await documentInfo(p.document_id)) || { id: p.document_id, title: p.document_title };
    dialog.close();
    openPreview(info, p);
  });

  function passageItem(p, label) {
    const item = passageTemplate.content.firstElementChild.cloneNode(true);
    field(item, "label").textContent = label;
    const snippet = p.text.length > 220 ? `${p.text.slice(0, 220)}…` : p.text;
    field(item, "snippet").textContent = snippet;
    item.querySelector("button").addEventListener("click", () => openPassage(p));
    return item;
  }

  // ---- preview: a source's extracted text, window by window --------------------------------
  const preview = document.getElementById("preview");
  const previewText = field(preview, "text");
  const previewMore = preview.querySelector('[data-action="more"]');
  const previewError = field(preview, "error");
  let previewing = null; // { id, next, cited, opener }
  preview.querySelector('[data-action="close"]').addEventListener("click", () => preview.close());
  preview.addEventListener("click", (e) => { if (e.target === preview) preview.close(); });
  preview.addEventListener("close", () => {
    const opener = previewing?.opener;
    previewing = null;
    if (opener && opener.isConnected) opener.focus();
  });

  // Windows of the text from `state.next` on, until `until` (a document offset) is shown.
  async function previewMoreText(state, until = 0) {
    previewMore.disabled = true;
    try {
      do {
        const limit = until ? 100000 : 20000;
        const body = await api("GET", `${docUrl(state.id)}/text?offset=${state.next}&limit=${limit}`);
        if (previewing !== state) return;
        const mark = state.cited ? [state.cited.start, state.cited.end] : null;
        previewText.append(...blockElements(body.text, body.offset, { mark, pages: body.pages }));
        const pages = body.pages.length ? ` · ${body.pages.length} pages` : "";
        field(preview, "meta").textContent = `${body.length.toLocaleString()} characters of extracted text${pages}`;
        state.next = body.next_offset;
      } while (state.next !== null && until && state.next < until);
      showError(previewError, "");
    } catch (err) {
      if (previewing === state) showError(previewError, `Could not load the text. ${err.message}`, err.status);
    } finally {
      previewMore.disabled = false;
      previewMore.hidden = !previewing || previewing.next === null;
    }
  }

  async function openPreview(doc, cited = null, opener = null) {
    const state = { id: doc.id, next: 0, cited, opener };
    previewing = state;
    field(preview, "title").textContent = doc.title || "Source text";
    field(preview, "meta").textContent = "";
    previewText.replaceChildren();
    previewMore.hidden = true;
    showError(previewError, "");
    preview.showModal();
    await previewMoreText(state, cited ? cited.end : 0);
    const marked = previewText.querySelector("mark");
    if (marked && previewing === state) marked.scrollIntoView({ block: "center" });
  }
  previewMore.addEventListener("click", () => { if (previewing) previewMoreText(previewing); });

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
  window.CharterFlow.notebook = {
    base, field, label, listeners, passageItem, schedulePoll, shownDocuments, upsertDocument,
  };
})();
