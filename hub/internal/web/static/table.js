// Sortable, filterable tables: a click on a header with data-key sorts the rows of its table
// by the row's data-<key> (numerically with data-type="num"); #fleet-search and #fleet-state
// filter the rows by their data-search text and data-state / data-risk.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.sortable").forEach(function (table) {
    const body = table.tBodies[0];
    table.querySelectorAll("th[data-key]").forEach(function (th) {
      th.addEventListener("click", function () {
        const key = th.dataset.key;
        const num = th.dataset.type === "num";
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        table.querySelectorAll("th[aria-sort]").forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        const rows = Array.from(body.rows).filter(function (r) { return r.dataset.id !== undefined; });
        rows.sort(function (a, b) {
          const x = a.dataset[key] || "", y = b.dataset[key] || "";
          const c = num ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
          return dir * c || a.dataset.id.localeCompare(b.dataset.id);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  const search = document.getElementById("fleet-search");
  const state = document.getElementById("fleet-state");
  const shown = document.getElementById("fleet-shown");
  const table = document.getElementById("stores");
  if (!search || !state || !table) return;
  function apply() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const want = state.value;
    let n = 0, all = 0;
    Array.from(table.tBodies[0].rows).forEach(function (r) {
      if (r.dataset.id === undefined) return;
      all++;
      const text = (r.dataset.search || "").toLowerCase();
      const okState = want === "" || (want === "risk" ? r.dataset.risk !== "0" : r.dataset.state === want);
      const ok = okState && words.every(function (w) { return text.includes(w); });
      r.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = n === all ? "" : n + " of " + all + " stores shown";
  }
  document.getElementById("fleet-filter").addEventListener("submit", function (ev) { ev.preventDefault(); });
  search.addEventListener("input", apply);
  state.addEventListener("change", apply);
});
