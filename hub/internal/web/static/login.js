// Sign-in form: POSTs {"username","password"} as JSON to /api/v1/session; on success the hub
// sets the session cookie and the browser goes to the dashboard.
"use strict";

(function () {
  const form = document.getElementById("login");
  const button = document.getElementById("submit");
  const error = document.getElementById("error");

  function show(msg) {
    error.textContent = msg;
    error.hidden = false;
  }

  function wait(secs) {
    if (!(secs > 0)) return "a moment";
    if (secs < 120) return secs + (secs === 1 ? " second" : " seconds");
    return Math.ceil(secs / 60) + " minutes";
  }

  async function reason(resp) {
    try {
      const body = await resp.json();
      if (body && body.error) return body.error;
    } catch (e) { /* not JSON */ }
    return resp.statusText;
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const resp = await fetch("/api/v1/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: form.username.value, password: form.password.value }),
      });
      if (resp.ok) {
        location.assign("/");
        return;
      }
      form.password.value = "";
      if (resp.status === 401) {
        show("Wrong username or password.");
      } else if (resp.status === 429) {
        show("Too many failed sign-ins. Try again in " + wait(parseInt(resp.headers.get("Retry-After"), 10)) + ".");
      } else {
        show("Sign-in failed (" + resp.status + "): " + (await reason(resp)));
      }
    } catch (e) {
      show("The hub cannot be reached: " + e.message);
    } finally {
      button.disabled = false;
    }
  });
})();
