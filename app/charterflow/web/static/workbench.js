// The notebook as a working surface: panels (side by side, or tabs on a phone), the
// conversation (answers streamed as they arrive), notes, charters and web page sources.
// Server data is written with textContent only.
"use strict";

(() => {
  const { api, ApiError, csrfToken, showError } = window.CharterFlow;
  const nb = window.CharterFlow.notebook;
  const { field } = nb;
  const canEdit = document.getElementById("workbench").dataset.canEdit === "true";
  const enc = encodeURIComponent;
  const byId = (id) => document.getElementById(id);

  // ---- panels: all three side by side from 64rem, else one at a time behind tabs ----------
  const wide = window.matchMedia("(min-width: 64rem)");
  const tabs = [...document.querySelectorAll('.panel-tabs [role="tab"]')];
  function layout() {
    for (const tab of tabs) {
      const selected = tab.getAttribute("aria-selected") === "true";
      byId(tab.getAttribute("aria-controls")).hidden = !wide.matches && !selected;
    }
  }
  function selectTab(tab, focus = false) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
    }
    layout();
    if (focus) tab.focus();
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) selectTab(tabs[(i + step + tabs.length) % tabs.length], true);
      else if (e.key === "Home") selectTab(tabs[0], true);
      else if (e.key === "End") selectTab(tabs[tabs.length - 1], true);
      else return;
      e.preventDefault();
    });
  });
  wide.addEventListener("change", layout);
  layout();

  const option = (value, text) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    return o;
  };
  const citationItems = (citations) => citations.map((c, i) => nb.passageItem(c, nb.label(c, i)));

  // ---- web page sources ----------------------------------------------------------------------
  const urlForm = byId("url-form");
  if (urlForm) {
    urlForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const errorEl = urlForm.querySelector(".form-error");
      showError(errorEl, "");
      try {
        const doc = await api("POST", `${nb.base}/documents/url`, { url: urlForm.elements.url.value.trim() });
        nb.upsertDocument(doc);
        nb.schedulePoll();
        urlForm.reset();
      } catch (err) {
        showError(errorEl, err.message, err.status);
      }
    });
  }

  // ---- notes -----------------------------------------------------------------------------------
  const notes = byId("notes");
  const notesError = byId("notes-error");
  function noteItem(note) {
    const li = document.createElement("li");
    const title = document.createElement("h3");
    title.textContent = note.title;
    title.tabIndex = -1;
    const body = document.createElement("p");
    body.className = "note-body";
    body.textContent = note.body;
    const actions = document.createElement("div");
    actions.className = "section-actions";
    const link = document.createElement("a");
    link.href = `/api/v1/notes/${enc(note.id)}/export`;
    link.textContent = "Export Markdown";
    link.setAttribute("aria-label", `Export ${note.title} as Markdown`);
    actions.append(link);
    if (canEdit) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "small";
      edit.textContent = "Edit";
      edit.setAttribute("aria-label", `Edit note ${note.title}`);
      edit.addEventListener("click", () => editNote(li, note));
      actions.append(edit);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "danger small";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", `Delete note ${note.title}`);
      remove.addEventListener("click", async () => {
        try {
          await api("DELETE", `/api/v1/notes/${enc(note.id)}`);
          await loadNotes();
          byId("notes-heading").focus();
        } catch (err) {
          showError(notesError, err.message, err.status);
        }
      });
      actions.append(remove);
    }
    li.append(title, body, actions);
    return li;
  }
  // The note's text in a form; its citations stay (the export numbers them as before).
  function editNote(li, note) {
    const form = document.createElement("form");
    form.className = "section-edit";
    const id = `note-${note.id}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = `Text of note ${note.title}`;
    const text = document.createElement("textarea");
    text.id = id;
    text.rows = 4;
    text.value = note.body;
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary small";
    save.textContent = "Save note";
    form.append(label, text, save);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const updated = await api("PATCH", `/api/v1/notes/${enc(note.id)}`, { body: text.value });
        const item = noteItem(updated);
        li.replaceWith(item);
        item.querySelector("h3").focus();
      } catch (err) {
        showError(notesError, err.message, err.status);
      }
    });
    li.querySelector(".note-body").replaceWith(form);
    text.focus();
  }

  async function loadNotes() {
    const page = await api("GET", `${nb.base}/notes?limit=100`);
    notes.replaceChildren(...page.items.map(noteItem));
    byId("notes-empty").hidden = page.items.length > 0;
  }
  byId("notes-heading").tabIndex = -1;

  // ---- "ask only these": the sources a question is limited to ------------------------------------
  // Ready documents as checkboxes; none checked means all of them. The choice holds for the
  // questions that follow (a thread's, or a new one's) until it is changed.
  const scope = byId("ask-scope");
  const choices = field(scope, "choices");
  const scopeSummary = field(scope, "summary");
  const titles = new Map(); // document id → title, for the turns' "Asked of" line

  function chosenIds() {
    return [...choices.querySelectorAll("input:checked")].map((box) => box.value);
  }
  function showScopeSummary() {
    const chosen = chosenIds();
    const total = choices.children.length;
    scopeSummary.textContent = chosen.length === 0
      ? "Answer from all sources"
      : `Answer only from ${chosen.length} of ${total} source${total === 1 ? "" : "s"}`;
    field(scope, "none").hidden = total > 0;
  }
  function followDocument(doc) {
    const existing = choices.querySelector(`[data-document-id="${CSS.escape(doc.id)}"]`);
    if (doc.deleted || doc.status !== "ready") {
      if (doc.deleted && existing) existing.remove();
      else if (existing && doc.status !== "ready") existing.remove();
      showScopeSummary();
      return;
    }
    titles.set(doc.id, doc.title);
    const item = existing || document.createElement("li");
    if (!existing) {
      item.dataset.documentId = doc.id;
      const label = document.createElement("label");
      label.className = "checkbox";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = doc.id;
      box.addEventListener("change", showScopeSummary);
      label.append(box, document.createElement("span"));
      item.append(label);
      choices.append(item);
    }
    item.querySelector("span").textContent = doc.title;
    showScopeSummary();
  }
  nb.shownDocuments().forEach(followDocument);
  nb.listeners.push(followDocument);
  scope.querySelector('[data-action="all"]').addEventListener("click", () => {
    for (const box of choices.querySelectorAll("input")) box.checked = false;
    showScopeSummary();
  });

  function showScope(turn, ids) {
    const line = field(turn, "scope");
    line.textContent = ids.length ? `Asked of: ${ids.map((id) => titles.get(id) || "a deleted source").join(", ")}` : "";
    line.hidden = !ids.length;
  }

  // ---- conversation ------------------------------------------------------------------------------
  const thread = byId("thread");
  const threadEmpty = byId("thread-empty");
  const picker = byId("conversation-select");
  const conversationError = byId("conversation-error");
  const askForm = byId("ask-form");
  const askButton = askForm.querySelector('[type="submit"]');
  const announce = byId("answer-status");
  const turnTemplate = byId("turn-template");
  let conversationId = null;
  let busy = false;

  function newTurn(question) {
    const turn = turnTemplate.content.firstElementChild.cloneNode(true);
    field(turn, "question").textContent = question;
    thread.append(turn);
    threadEmpty.hidden = true;
    return turn;
  }

  // Which mode wrote an answer, in words: quoted extracts, or a model's own sentences. Nothing
  // is said of an answer that cites nothing ("The sources don't answer this.": `quoted` is
  // false and no model wrote it). A server without `quoted` says it with `mode` alone.
  function modeLabel(message) {
    if (!message.citations || message.citations.length === 0) return "";
    if (message.mode === "llm") return `Written by ${message.model || "a language model"} from your sources`;
    return message.quoted === false ? "" : "Quoted from your sources";
  }

  function showTurn(turn, message) {
    turn.dataset.status = message.status;
    turn.dataset.messageId = message.id;
    turn.dataset.mode = message.mode || "";
    field(turn, "answer").textContent = message.answer;
    const mode = field(turn, "mode");
    mode.textContent = modeLabel(message);
    mode.hidden = !mode.textContent;
    if (Array.isArray(message.document_ids)) showScope(turn, message.document_ids);
    const warning = field(turn, "warning");
    warning.textContent = message.warning || "";
    warning.hidden = !message.warning;
    field(turn, "citations").replaceChildren(...citationItems(message.citations));
    const save = turn.querySelector('[data-action="save-note"]');
    save.hidden = !canEdit || message.status !== "complete";
  }

  thread.addEventListener("click", async (event) => {
    const save = event.target.closest('[data-action="save-note"]');
    if (!save) return;
    const turn = save.closest(".turn");
    try {
      await api("POST", `${nb.base}/notes`, { from_message_id: turn.dataset.messageId });
      field(turn, "saved").textContent = "Saved to notes.";
      await loadNotes();
    } catch (err) {
      field(turn, "saved").textContent = err.message;
    }
  });

  async function openConversation(id) {
    conversationId = id || null;
    thread.replaceChildren();
    if (conversationId) {
      const page = await api("GET", `/api/v1/conversations/${enc(conversationId)}/messages?limit=100`);
      for (const message of page.items) showTurn(newTurn(message.question), message);
    }
    threadEmpty.hidden = thread.children.length > 0;
  }

  // Rename and delete: the thread's starter, or an editor (the API decides; the buttons follow it).
  const me = byId("workbench").dataset.userId;
  const renameButton = byId("conversation-rename");
  const deleteButton = byId("conversation-delete");
  const renameForm = byId("conversation-rename-form");
  let starters = new Map();
  function showThreadActions() {
    const mine = conversationId && (canEdit || starters.get(conversationId) === me);
    renameButton.hidden = deleteButton.hidden = !mine;
    renameForm.hidden = true;
  }

  async function loadConversations(selected) {
    const page = await api("GET", `${nb.base}/conversations?limit=100`);
    starters = new Map(page.items.map((c) => [c.id, c.created_by]));
    picker.replaceChildren(option("", "New conversation"), ...page.items.map((c) => option(c.id, c.title)));
    picker.value = selected ?? (page.items.length ? page.items[page.items.length - 1].id : "");
    return picker.value;
  }

  async function switchConversation(id) {
    showError(conversationError, "");
    try {
      await openConversation(id);
    } catch (err) {
      showError(conversationError, err.message, err.status);
    }
    showThreadActions();
  }
  picker.addEventListener("change", () => switchConversation(picker.value));
  byId("conversation-new").addEventListener("click", async () => {
    picker.value = "";
    await switchConversation("");
    askForm.elements.question.focus();
  });
  renameButton.addEventListener("click", () => {
    renameForm.hidden = false;
    renameForm.elements.title.value = picker.selectedOptions[0].textContent;
    renameForm.elements.title.focus();
  });
  renameForm.querySelector('[data-action="cancel"]').addEventListener("click", () => {
    renameForm.hidden = true;
    renameButton.focus();
  });
  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const title = renameForm.elements.title.value;
      await api("PATCH", `/api/v1/conversations/${enc(conversationId)}`, { title });
      await loadConversations(conversationId);
      showThreadActions();
      picker.focus();
    } catch (err) {
      showError(conversationError, err.message, err.status);
    }
  });
  deleteButton.addEventListener("click", async () => {
    const title = picker.selectedOptions[0].textContent;
    if (!window.confirm(`Delete the thread “${title}” and its answers?`)) return;
    try {
      await api("DELETE", `/api/v1/conversations/${enc(conversationId)}`);
      await switchConversation(await loadConversations(""));
      picker.focus();
    } catch (err) {
      showError(conversationError, err.message, err.status);
    }
  });

  // One Server-Sent Event: "event: name\ndata: json".
  function parseEvent(raw) {
    let name = "message";
    const data = [];
    for (const line of raw.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    return { name, data: data.length ? JSON.parse(data.join("\n")) : null };
  }

  async function streamTurn(turn, question, documentIds) {
    let response;
    try {
      response = await fetch(`/api/v1/conversations/${enc(conversationId)}/messages`, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "text/event-stream",
          "Content-Type": "application/json",
          "X-CSRF-Token": csrfToken(),
        },
        body: JSON.stringify(documentIds.length ? { question, document_ids: documentIds } : { question }),
      });
    } catch {
      throw new ApiError(0);
    }
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new ApiError(response.status, body, response.headers.get("Retry-After"));
    }
    const answer = field(turn, "answer");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.name === "citations") {
          field(turn, "citations").replaceChildren(...citationItems(event.data.citations));
        } else if (event.name === "delta") {
          answer.textContent += event.data.text;
        } else if (event.name === "done") {
          showTurn(turn, event.data);
          const mode = modeLabel(event.data);
          announce.textContent = `Answer${mode ? ` (${mode.toLowerCase()})` : ""}: ${event.data.answer}`;
        } else if (event.name === "error") {
          if (event.data.turn) showTurn(turn, event.data.turn);
          const warning = field(turn, "warning");
          warning.textContent = event.data.detail;
          warning.hidden = false;
          announce.textContent = `The answer stopped: ${event.data.detail}`;
        }
      }
    }
  }

  askForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errorEl = askForm.querySelector(".form-error");
    const question = askForm.elements.question.value.trim();
    if (busy || !question) return;
    // The button stays enabled (a disabled, focused button drops focus to the page body);
    // a second submit is ignored while the answer streams.
    busy = true;
    askButton.setAttribute("aria-disabled", "true");
    askButton.textContent = "Answering…";
    showError(errorEl, "");
    let started = false;
    try {
      if (!conversationId) {
        const created = await api("POST", `${nb.base}/conversations`, {});
        conversationId = created.id;
        started = true;
      }
      const turn = newTurn(question);
      const documentIds = chosenIds();
      showScope(turn, documentIds);
      field(turn, "question").focus(); // focus moves to the new turn, explicitly
      announce.textContent = "Answering…";
      await streamTurn(turn, question, documentIds);
      askForm.elements.question.value = "";
      if (started) {
        await loadConversations(conversationId);
        showThreadActions();
      }
    } catch (err) {
      showError(errorEl, err.message, err.status);
      askForm.elements.question.focus();
    } finally {
      busy = false;
      askButton.removeAttribute("aria-disabled");
      askButton.textContent = "Ask";
    }
  });

  // ---- charters --------------------------------------------------------------------------------------
  const TEMPLATES = { "product-charter": "Product charter", sop: "Standard operating procedure" };
  const charterEl = byId("charter");
  const charterPicker = byId("charter-select");
  const charterError = byId("charter-error");
  let charter = null;

  function sectionEl(section) {
    const el = document.createElement("section");
    el.className = "charter-section";
    el.dataset.key = section.key;
    el.dataset.status = section.status;
    const heading = document.createElement("h4");
    heading.id = `section-${section.key}`;
    heading.tabIndex = -1;
    heading.textContent = section.title;
    el.setAttribute("aria-labelledby", heading.id);
    const body = document.createElement("p");
    body.className = "section-body";
    body.textContent = section.body;
    el.append(heading);
    if (section.warning) {
      const warning = document.createElement("p");
      warning.className = "warning";
      warning.textContent = section.warning;
      el.append(warning);
    }
    el.append(body);
    const mode = section.status === "drafted" ? modeLabel(section) : "";
    if (mode) {
      const label = document.createElement("p");
      label.className = "answer-mode";
      label.textContent = mode;
      el.append(label);
    }
    if (section.citations.length) {
      const list = document.createElement("ol");
      list.className = "citations";
      list.setAttribute("aria-label", `Sources of ${section.title}`);
      list.replaceChildren(...citationItems(section.citations));
      el.append(list);
    }
    if (canEdit) {
      const actions = document.createElement("div");
      actions.className = "section-actions";
      for (const [action, text] of [["edit", "Edit"], ["regenerate", "Redraft"]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "small";
        button.dataset.action = action;
        button.textContent = text;
        button.setAttribute("aria-label", `${text} ${section.title}`);
        actions.append(button);
      }
      el.append(actions);
    }
    return el;
  }

  function editor(el, section) {
    const form = document.createElement("form");
    form.className = "section-edit";
    const id = `edit-${section.key}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = `Text of ${section.title}`;
    const text = document.createElement("textarea");
    text.id = id;
    text.rows = 5;
    text.value = section.body;
    // What becomes of the section's citations: the safe choice (drop those the new text no
    // longer cites with an [n] mark) unless keeping them all is chosen.
    const policy = document.createElement("fieldset");
    policy.className = "citations-policy";
    const legend = document.createElement("legend");
    legend.textContent = `Citations of ${section.title}`;
    policy.append(legend);
    for (const [value, text] of [
      ["drop_unused", "Drop the citations the new text no longer cites ([n] marks)"],
      ["keep", "Keep all its citations"],
    ]) {
      const option = document.createElement("label");
      option.className = "checkbox";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = `policy-${section.key}`;
      radio.value = value;
      radio.checked = value === "drop_unused";
      option.append(radio, ` ${text}`);
      policy.append(option);
    }
    policy.disabled = section.citations.length === 0;
    const error = document.createElement("p");
    error.className = "form-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary small";
    save.textContent = "Save section";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "small";
    cancel.textContent = "Cancel";
    const actions = document.createElement("div");
    actions.className = "section-actions";
    actions.append(save, cancel);
    form.append(label, text, policy, error, actions);
    cancel.addEventListener("click", () => showCharter(charter, section.key));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const chosen = policy.querySelector("input:checked").value;
        const url = `/api/v1/charters/${enc(charter.id)}/sections/${enc(section.key)}`;
        const updated = await api("PATCH", url, { body: text.value, citations_policy: chosen });
        await showCharter(updated, section.key);
      } catch (err) {
        showError(error, err.message, err.status);
      }
    });
    el.querySelector(".section-body").replaceWith(form);
    el.querySelector(".section-actions:not(form .section-actions)")?.remove();
    text.focus();
  }

  async function showVersions() {
    const list = field(charterEl, "versions");
    const page = await api("GET", `/api/v1/charters/${enc(charter.id)}/versions?limit=100`);
    list.replaceChildren(...page.items.map((v) => {
      const li = document.createElement("li");
      li.textContent = `Version ${v.number} — ${v.change} `;
      if (canEdit && v.number !== charter.version) {
        const restore = document.createElement("button");
        restore.type = "button";
        restore.className = "small";
        restore.textContent = "Restore";
        restore.setAttribute("aria-label", `Restore version ${v.number}`);
        restore.addEventListener("click", async () => {
          try {
            const restored = await api("POST", `/api/v1/charters/${enc(charter.id)}/versions/${v.number}/restore`);
            await showCharter(restored);
          } catch (err) {
            showError(charterError, err.message, err.status);
          }
        });
        li.append(restore);
      }
      return li;
    }));
  }

  // Render ``c``; focus goes to the section just changed, or to the charter's title.
  async function showCharter(c, focusKey) {
    charter = c;
    charterEl.hidden = false;
    byId("charters-empty").hidden = true;
    byId("charter-title-shown").textContent = c.title;
    field(charterEl, "meta").textContent = `${TEMPLATES[c.template] || c.template} · version ${c.version}`;
    const exportLink = field(charterEl, "export");
    exportLink.href = `/api/v1/charters/${enc(c.id)}/export`;
    exportLink.setAttribute("aria-label", `Export ${c.title} as Markdown`);
    field(charterEl, "sections").replaceChildren(...c.sections.map(sectionEl));
    await showVersions();
    const target = focusKey ? byId(`section-${focusKey}`) : null;
    if (focusKey !== undefined) (target || byId("charter-title-shown")).focus();
  }

  charterEl.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button || !charter) return;
    const key = button.closest(".charter-section")?.dataset.key;
    const section = charter.sections.find((s) => s.key === key);
    if (!section) return;
    if (button.dataset.action === "edit") {
      editor(button.closest(".charter-section"), section);
    } else if (button.dataset.action === "regenerate") {
      button.textContent = "Redrafting…";
      try {
        const redrafted = await api("POST", `/api/v1/charters/${enc(charter.id)}/sections/${enc(key)}/regenerate`);
        await showCharter(redrafted, key);
      } catch (err) {
        showError(charterError, err.message, err.status);
        button.textContent = "Redraft";
      }
    }
  });

  async function loadCharters(selected) {
    const page = await api("GET", `${nb.base}/charters?limit=100`);
    charterPicker.replaceChildren(...page.items.map((c) => option(c.id, c.title)));
    charterPicker.closest(".charter-pick").hidden = page.items.length === 0;
    const id = selected || (page.items.length ? page.items[page.items.length - 1].id : "");
    charterPicker.value = id;
    return page.items.find((c) => c.id === id) || null;
  }

  charterPicker.addEventListener("change", async () => {
    try {
      await showCharter(await api("GET", `/api/v1/charters/${enc(charterPicker.value)}`));
    } catch (err) {
      showError(charterError, err.message, err.status);
    }
  });

  const charterForm = byId("charter-form");
  if (charterForm) {
    const button = charterForm.querySelector('[type="submit"]');
    let drafting = false;
    charterForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (drafting) return;
      const errorEl = charterForm.querySelector(".form-error");
      showError(errorEl, "");
      drafting = true;
      button.setAttribute("aria-disabled", "true");
      button.textContent = "Drafting…";
      try {
        const created = await api("POST", `${nb.base}/charters`, {
          template: charterForm.elements.template.value,
          title: charterForm.elements.title.value.trim(),
        });
        await loadCharters(created.id);
        await showCharter(created, null);
        charterForm.elements.title.value = "";
      } catch (err) {
        showError(errorEl, err.message, err.status);
      } finally {
        drafting = false;
        button.removeAttribute("aria-disabled");
        button.textContent = "Draft charter";
      }
    });
  }

  // ---- first load ------------------------------------------------------------------------------------
  (async () => {
    try {
      await switchConversation(await loadConversations());
    } catch (err) {
      showError(conversationError, err.message, err.status);
    }
    try {
      await loadNotes();
    } catch (err) {
      showError(notesError, err.message, err.status);
    }
    try {
      const latest = await loadCharters();
      if (latest) await showCharter(latest);
    } catch (err) {
      showError(charterError, err.message, err.status);
    }
  })();
})();
