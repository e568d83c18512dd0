// CharterFlow UI: shared helpers, and forms that call the JSON API with the session cookie.
// Data from the server is only ever written with textContent or attributes, never as HTML.
"use strict";

(() => {
  const FIELD_LABELS = { email: "Email", password: "Password", name: "Name", title: "Title",
    description: "Description", role: "Role", question: "Question", q: "Search terms" };

  function csrfToken() {
    return document.querySelector('meta[name="csrf-token"]').content;
  }

  function detailText(body) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((e) => {
        const field = Array.isArray(e.loc) ? String(e.loc[e.loc.length - 1]) : "";
        return `${FIELD_LABELS[field] || field}: ${e.msg}`;
      }).join("; ");
    }
    return "";
  }

  // One clear sentence for each status the API can answer.
  function describeError(status, body, retryAfter) {
    const detail = detailText(body);
    switch (status) {
      case 0: return "Could not reach CharterFlow. Check your connection and try again.";
      case 401: return "Your session has expired. Sign in again to continue.";
      case 403: return detail ? `Not allowed: ${detail}.` : "You are not allowed to do that.";
      case 404: return "Not found. It may have been deleted, or you are no longer a member of its workspace.";
      case 409: return detail || "That conflicts with the current state; reload the page and try again.";
      case 413: return detail ? `Too large: ${detail}.` : "The file is too large.";
      case 415: return detail || "This file type is not supported.";
      case 422: return detail ? `Please check: ${detail}.` : "Some fields are not valid.";
      case 429: return `Too many requests. Try again in ${retryAfter ? `${retryAfter} seconds` : "a moment"}.`;
      case 503: return `The service is temporarily unavailable${detail ? ` (${detail})` : ""}. Try again shortly.`;
      default: return detail || `Something went wrong (HTTP ${status}).`;
    }
  }

  class ApiError extends Error {
    constructor(status, body, retryAfter) {
      super(describeError(status, body, retryAfter));
      this.status = status;
      this.retryAfter = Number(retryAfter) || 0;
    }
  }

  async function api(method, url, data) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    if (data !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0);
    }
    if (response.status === 204) return null;
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body, response.headers.get("Retry-After"));
    return body;
  }

  // Show ``message`` in ``el`` (hidden when empty); a 401 also offers the way back in.
  function showError(el, message, status) {
    if (!el) return;
    el.textContent = message || "";
    if (status === 401) {
      const link = document.createElement("a");
      link.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      link.textContent = "Sign in";
      el.append(" ", link);
    }
    el.hidden = !message;
  }

  const afterSuccess = {
    reload: () => location.reload(),
    "open-notebook": (result) => location.assign(`/app/notebooks/${encodeURIComponent(result.id)}`),
  };

  // <form data-api="/api/v1/..." data-method="POST" data-then="reload">: JSON request, errors shown in the form.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const method = form.dataset.method || "POST";
    const errorEl = form.querySelector(".form-error");
    const button = form.querySelector('[type="submit"]');
    const data = method === "DELETE" ? undefined : Object.fromEntries(new FormData(form));
    showError(errorEl, "");
    button.disabled = true;
    try {
      const result = await api(method, form.dataset.api, data);
      (afterSuccess[form.dataset.then] || (() => {}))(result);
    } catch (err) {
      showError(errorEl, err.message, err.status);
    } finally {
      button.disabled = false;
    }
  });

  window.CharterFlow = { api, ApiError, csrfToken, describeError, showError };
})();
