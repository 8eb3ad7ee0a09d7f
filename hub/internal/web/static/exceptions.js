// Exceptions page and exception page: per-row actions (acknowledge, resolve, re-post, request
// replay) and bulk acknowledge/resolve of the checked rows, each with the comment box's text,
// made through the API with the session's CSRF token (lanebridge.send, console.js). The page
// reloads after a change to show the new states and history.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const status = document.getElementById("action-status");
  const comment = document.getElementById("comment");
  if (!status) return; // a viewer: no actions

  function say(text, bad) {
    status.textContent = text;
    status.className = bad ? "bad" : "ok";
  }

  async function act(method, url, body, done) {
    say("Working…", false);
    try {
      const resp = await window.lanebridge.send(method, url, body);
      const reply = await resp.json().catch(function () { return {}; });
      if (!resp.ok) {
        say("Refused (" + resp.status + "): " + (reply.error || resp.statusText), true);
        return;
      }
      const msg = done(reply);
      if (msg) {
        say(msg, reply.not_found > 0);
        if (reply.not_found > 0) return;
      }
      location.reload();
    } catch (e) {
      say("The hub cannot be reached: " + e.message, true);
    }
  }

  document.querySelectorAll("button[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      const id = b.dataset.id;
      const text = comment ? comment.value : "";
      if (b.dataset.action === "replay") {
        act("POST", "/api/v1/exceptions/" + id + "/replay", { comment: text }, function () { return ""; });
      } else {
        act("POST", "/api/v1/exceptions/" + id, { state: b.dataset.action, comment: text }, function () { return ""; });
      }
    });
  });

  document.querySelectorAll("button[data-bulk]").forEach(function (b) {
    b.addEventListener("click", function () {
      const ids = Array.from(document.querySelectorAll("input[name=id]:checked")).map(function (c) { return Number(c.value); });
      if (ids.length === 0) {
        say("Select exceptions first.", true);
        return;
      }
      act("POST", "/api/v1/exceptions/bulk", { ids: ids, state: b.dataset.bulk, comment: comment.value }, function (r) {
        return r.not_found > 0 ? r.changed + " changed, " + r.not_found + " not found" : "";
      });
    });
  });

  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=id]").forEach(function (c) { c.checked = all.checked; });
    });
  }
});
