// Console layout: shows who is signed in and signs out (DELETE /api/v1/session with the
// session's CSRF token), and gives the page scripts lanebridge.send, which makes a change
// through the API with that token. A page opened with an API token has no session: the
// sign-out control stays hidden.
"use strict";

window.lanebridge = (function () {
  const session = fetch("/api/v1/session", { credentials: "same-origin" })
    .then(function (resp) { return resp.ok ? resp.json() : null; })
    .catch(function () { return null; });

  // send makes a change: method, url, optional JSON body. It resolves to the response.
  async function send(method, url, body) {
    const s = await session;
    const headers = { "X-CSRF-Token": s ? s.csrf_token : "" };
    const init = { method: method, credentials: "same-origin", headers: headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  }

  document.addEventListener("DOMContentLoaded", async function () {
    const who = document.getElementById("who");
    const logout = document.getElementById("logout");
    const error = document.getElementById("session-error");
    const s = await session;
    if (!s || !s.csrf_token) return;
    who.textContent = "Signed in as " + s.username + " (" + s.role + ")";
    logout.hidden = false;
    logout.addEventListener("click", async function () {
      try {
        const resp = await send("DELETE", "/api/v1/session");
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
  });

  return { send: send };
})();
