// Dashboard: shows who is signed in and signs out (DELETE /api/v1/session with the session's
// CSRF token). A dashboard opened with an API token has no session: the control stays hidden.
"use strict";

(async function () {
  const who = document.getElementById("who");
  const logout = document.getElementById("logout");
  const error = document.getElementById("session-error");
  let csrf = "";
  try {
    const resp = await fetch("/api/v1/session", { credentials: "same-origin" });
    if (!resp.ok) return;
    const s = await resp.json();
    csrf = s.csrf_token;
    who.textContent = "Signed in as " + s.username + " (" + s.role + ")";
    logout.hidden = false;
  } catch (e) {
    return;
  }
  logout.addEventListener("click", async function () {
    try {
      const resp = await fetch("/api/v1/session", {
        method: "DELETE",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
      });
      if (resp.ok || resp.status === 401) {
        location.assign("/login");
        return;
      }
      error.textContent = "Sign-out failed (" + resp.status + ").";
    } catch (e) {
      error.textContent = "The hub cannot be reached: " + e.message;
    }
    error.hidden = false;
  });
})();
