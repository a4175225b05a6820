// ctxeval dashboard: charts, live progress, form helpers. Plain JavaScript, no dependencies.
"use strict";

(function () {
  // ---------------------------------------------------------------------------------- formatting
  function num(v) { return v == null ? "–" : Math.round(v).toLocaleString("en-US"); }
  function compact(v) {
    if (v == null) return "–";
    var units = [[1e9, "B"], [1e6, "M"], [1e3, "K"]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(v) >= units[i][0]) return (v / units[i][0]).toFixed(1) + units[i][1];
    }
    return num(v);
  }
  function usd(v) {
    if (v == null) return "–";
    if (v === 0) return "$0";
    if (Math.abs(v) >= 100) return "$" + Math.round(v).toLocaleString("en-US");
    if (Math.abs(v) >= 1) return "$" + v.toFixed(2);
    if (Math.abs(v) < 0.001) return "$" + v.toFixed(7).replace(/0+$/, "");
    return "$" + v.toFixed(4);
  }
  function duration(s) {
    if (s == null) return "–";
    s = Math.round(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  // -------------------------------------------------------------------------------------- charts
  function drawCharts() {
    var divs = document.querySelectorAll("[data-figure]");
    if (!divs.length || typeof Plotly === "undefined") return;
    divs.forEach(function (div) {
      var source = document.getElementById(div.getAttribute("data-figure"));
      var fig = JSON.parse(source.textContent);
      Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true,
        modeBarButtonsToRemove: ["select2d", "lasso2d"] });
    });
  }

  // ------------------------------------------------------------------------------------ progress
  var ACTIVE = ["queued", "running"];

  function setText(block, field, text) {
    var el = block.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = text;
  }

  function update(block, run) {
    var p = run.progress;
    block.querySelector('[data-field="bar"]').style.width = (p.fraction * 100).toFixed(1) + "%";
    block.querySelector(".progress").setAttribute("aria-valuenow", p.done);
    var bar = block.querySelector(".progress");
    bar.classList.toggle("done", run.status === "completed");
    bar.classList.toggle("partial", run.status === "completed_with_errors");
    bar.classList.toggle("failed", run.status === "failed");
    setText(block, "done", num(p.done));
    setText(block, "total", num(p.total));
    setText(block, "pct", Math.round(p.fraction * 100) + "%");
    setText(block, "eta", run.status === "running" ? duration(p.eta_s) : "–");
    setText(block, "tokens", compact(p.prompt_tokens + p.completion_tokens));
    setText(block, "cost", usd(p.cost_usd));
    var row = block.closest("[data-run-row]") || document;
    var badge = row.querySelector('.badge[data-field="status"]');
    if (badge) { badge.textContent = run.status.replace(/_/g, " "); badge.className = "badge st-" + run.status; }
    block.setAttribute("data-status", run.status);
  }

  function poll(block) {
    var id = block.getAttribute("data-run-id");
    fetch("/api/runs/" + encodeURIComponent(id), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (run) {
        var wasActive = ACTIVE.indexOf(block.getAttribute("data-status")) >= 0;
        update(block, run);
        if (ACTIVE.indexOf(run.status) >= 0) {
          setTimeout(function () { poll(block); }, 1500);
        } else if (wasActive && block.hasAttribute("data-reload-on-finish")) {
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(function () { poll(block); }, 5000); });
  }

  function watchProgress() {
    document.querySelectorAll("[data-run-progress]").forEach(function (block) {
      if (ACTIVE.indexOf(block.getAttribute("data-status")) >= 0) setTimeout(function () { poll(block); }, 1000);
    });
  }

  // --------------------------------------------------------------------------------------- forms
  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  }

  function newRunForm() {
    var form = document.getElementById("new-run");
    if (!form) return;
    form.querySelectorAll("[data-strategy]").forEach(function (box) {
      var tick = box.querySelector('.head input[type="checkbox"]');
      tick.addEventListener("change", function () { box.classList.toggle("on", tick.checked); });
    });
    var target = document.getElementById("estimate");
    var timer = null;
    var seq = 0;
    function refresh() {
      var mine = ++seq;
      fetch(form.getAttribute("data-estimate-url"), { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) { if (mine === seq) target.innerHTML = html; })
        .catch(function () { /* the Estimate button still works */ });
    }
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 400); });
    form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 150); });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    watchProgress();
    confirmations();
    newRunForm();
  });
})();
