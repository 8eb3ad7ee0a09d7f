// Store page: charts that fail to load say "no data yet"; the replay form and the close
// buttons call the API with the session's CSRF token (lanebridge.send). A close of a day that
// is still trading answers 409: the page asks for a reason and sends it.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const status = document.getElementById("action-status");
  function say(text, bad) {
    status.textContent = text;
    status.className = bad ? "bad" : "ok";
  }
  async function explain(resp) {
    try {
      const body = await resp.json();
      return body.error || JSON.stringify(body);
    } catch (e) {
      return String(resp.status);
    }
  }

  document.querySelectorAll("img.chart").forEach(function (img) {
    function none() {
      img.hidden = true;
      img.parentElement.querySelector(".no-data").hidden = false;
    }
    img.addEventListener("error", none);
    if (img.complete && img.naturalWidth === 0) none();
  });

  const replay = document.getElementById("replay");
  if (replay) replay.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const f = new FormData(replay);
    const body = {
      terminal: f.get("terminal"),
      business_date: f.get("business_date"),
      from_receipt: parseInt(f.get("from_receipt"), 10),
      to_receipt: parseInt(f.get("to_receipt"), 10),
    };
    try {
      const resp = await lanebridge.send("POST", "/api/v1/stores/" + encodeURIComponent(replay.dataset.store) + "/replay", body);
      if (resp.ok) {
        const r = await resp.json();
        say("Replay requested (command " + r.id + "); the agent's answer shows in its status.");
      } else {
        say("Replay refused: " + (await explain(resp)), true);
      }
    } catch (e) {
      say("The hub cannot be reached: " + e.message, true);
    }
  });

  document.querySelectorAll("button.close-day").forEach(function (btn) {
    btn.addEventListener("click", async function () {
      const url = "/api/v1/stores/" + encodeURIComponent(btn.dataset.store) + "/days/" + btn.dataset.date + "/close";
      btn.disabled = true;
      say("Closing " + btn.dataset.date + "…");
      try {
        let resp = await lanebridge.send("POST", url);
        if (resp.status === 409) {
          const why = await explain(resp);
          const reason = window.prompt(why + "\n\nReason for closing " + btn.dataset.date + " now (recorded in the audit log):");
          if (!reason) {
            say("Close of " + btn.dataset.date + " cancelled.", true);
            return;
          }
          resp = await lanebridge.send("POST", url, { reason: reason });
        }
        if (resp.ok) {
          const r = await resp.json();
          say(btn.dataset.date + " closed: " + r.state + " (" + (r.issues || []).length + " differences).");
          location.assign("/calendar/" + encodeURIComponent(btn.dataset.store) + "/" + btn.dataset.date);
        } else {
          say("Close refused: " + (await explain(resp)), true);
        }
      } catch (e) {
        say("The hub cannot be reached: " + e.message, true);
      } finally {
        btn.disabled = false;
      }
    });
  });
});
