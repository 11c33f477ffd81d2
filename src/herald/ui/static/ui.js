/* Herald admin UI: the little behaviour htmx does not cover. No inline scripts (the CSP forbids them). */
(function () {
  "use strict";

  // Charts: <canvas data-chart="ID"> with its data in <script type="application/json" id="ID">.
  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      canvas.dataset.drawn = "1";
      var colours = ["#2557d6", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2"];
      new window.Chart(canvas, {
        type: spec.type || "line",
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (s, i) {
            return { label: s.label, data: s.data, borderColor: colours[i % colours.length],
                     backgroundColor: colours[i % colours.length], tension: 0.25, pointRadius: 2 };
          })
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   interaction: { mode: "index", intersect: false },
                   scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    });
  }

  // Segment rule builder: rows of (field, op, value) serialised into the hidden DSL JSON field.
  function ruleValue(row) {
    var field = row.querySelector("[name=rule_field]").value;
    var op = row.querySelector("[name=rule_op]").value;
    var raw = row.querySelector("[name=rule_value]").value.trim();
    var leaf = { field: field, op: op };
    if (op === "exists" || op === "missing") return leaf;
    if (op === "in" || op === "not_in") {
      leaf.value = raw.split(",").map(function (v) { return v.trim(); }).filter(Boolean);
    } else if (/^-?\d+(\.\d+)?$/.test(raw) && (op === "gt" || op === "gte" || op === "lt" || op === "lte")) {
      leaf.value = Number(raw);
    } else if (raw === "true" || raw === "false") {
      leaf.value = raw === "true";
    } else {
      leaf.value = raw;
    }
    return leaf;
  }

  function syncRules(builder) {
    var rows = builder.querySelectorAll(".rule-row");
    var leaves = [];
    rows.forEach(function (row) {
      if (row.querySelector("[name=rule_field]").value) leaves.push(ruleValue(row));
    });
    var match = builder.querySelector("[name=rule_match]").value;
    var out = builder.querySelector("[name=rules]");
    var rules = {};
    rules[match] = leaves;
    out.value = JSON.stringify(rules);
    out.dispatchEvent(new Event("rules-changed", { bubbles: true }));
  }

  function setupBuilder(builder) {
    if (builder.dataset.ready) return;
    builder.dataset.ready = "1";
    var template = builder.querySelector("template.rule-template");
    var list = builder.querySelector(".rule-rows");
    builder.addEventListener("click", function (event) {
      var target = event.target;
      if (target.matches("[data-add-rule]")) {
        list.appendChild(template.content.cloneNode(true));
        syncRules(builder);
      } else if (target.matches("[data-remove-rule]")) {
        target.closest(".rule-row").remove();
        syncRules(builder);
      }
    });
    builder.addEventListener("input", function () { syncRules(builder); });
    builder.addEventListener("change", function () { syncRules(builder); });
    syncRules(builder);
  }

  // Confirm dangerous buttons: <button data-confirm="Really?">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  function init(root) {
    drawCharts(root);
    root.querySelectorAll("[data-rule-builder]").forEach(setupBuilder);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
