// Identity pages: API keys shown once, password reset and invitations from emailed links.
// Tokens of emailed links arrive in the URL fragment (never sent to the server); they are
// read here, removed from the address bar, and sent only in the body or path of one API call.
"use strict";

(() => {
  const { api, showError } = window.CharterFlow;

  // Submit ``form`` through ``send`` (an async function of its FormData); errors shown in it.
  // Captured on the form, so app.js's generic data-api handler never sees these forms.
  function handle(form, send) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      const errorEl = form.querySelector(".form-error");
      showError(errorEl, "");
      try {
        await send(new FormData(form));
      } catch (err) {
        showError(errorEl, err.message, err.status);
      }
    }, true);
  }

  function fragmentToken() {
    const match = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
    if (match) history.replaceState(null, "", location.pathname + location.search);
    return match ? match[1] : null;
  }

  // The API keys form: show the new key once.
  const keyForm = document.getElementById("new-key-form");
  if (keyForm) {
    handle(keyForm, async (data) => {
      const created = await api("POST", "/api/v1/auth/tokens", {
        name: data.get("name"), read_only: data.get("read_only") === "true" });
      document.getElementById("new-key-value").textContent = created.token;
      document.getElementById("new-key").hidden = false;
      keyForm.reset();
    });
  }

  // Password reset: ask for a link, or (with a link's token) set the new password.
  const request = document.getElementById("reset-request");
  if (request) {
    const done = document.getElementById("reset-done");
    const confirm = document.getElementById("reset-confirm");
    const token = fragmentToken();
    if (token) {
      request.hidden = true;
      confirm.hidden = false;
      handle(confirm, async (data) => {
        await api("POST", "/api/v1/auth/password-reset/confirm",
          { token, new_password: data.get("new_password") });
        confirm.hidden = true;
        done.textContent = "Your password is changed. Sign in with it now.";
        done.hidden = false;
      });
    }
    handle(request, async (data) => {
      const answer = await api("POST", "/api/v1/auth/password-reset", { email: data.get("email") });
      request.hidden = true;
      done.textContent = answer.detail;
      done.hidden = false;
    });
  }

  // Email verification: the link's token, sent once to the API.
  const verify = document.getElementById("verify-email");
  if (verify) {
    const token = fragmentToken();
    if (!token) verify.textContent = "This link is incomplete; open it from the email again.";
    else {
      api("POST", "/api/v1/auth/verify-email", { token }).then(
        () => { verify.textContent = "Your email is verified."; },
        () => { verify.textContent = "This link is invalid or has expired."; },
      );
    }
  }

  // Invitations: keep the token in this tab while its reader signs in, then accept.
  const invitation = document.getElementById("invitation");
  if (invitation) {
    const KEY = "charterflow-invitation";
    const fresh = fragmentToken();
    if (fresh) sessionStorage.setItem(KEY, fresh);
    const token = sessionStorage.getItem(KEY);
    document.getElementById("invitation-missing").hidden = Boolean(token);
    const form = document.getElementById("accept-form");
    if (form && !token) form.hidden = true;
    if (form && token) {
      handle(form, async () => {
        const joined = await api("POST", "/api/v1/invitations/accept", { token });
        sessionStorage.removeItem(KEY);
        location.assign(`/app/workspaces/${encodeURIComponent(joined.workspace_id)}`);
      });
    }
  }

  // Workspace page: an invitation made without email shows its link once, to pass on.
  const inviteForm = document.getElementById("invite-form");
  if (inviteForm) {
    handle(inviteForm, async (data) => {
      const created = await api("POST", inviteForm.dataset.url,
        { email: data.get("email"), role: data.get("role") });
      const out = document.getElementById("invite-result");
      out.textContent = created.emailed
        ? `Invitation emailed to ${created.email}.`
        : `No email is configured: send ${created.email} this link (it works once): ${created.invite_url}`;
      out.hidden = false;
      inviteForm.reset();
    });
  }
})();
