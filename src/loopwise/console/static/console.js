// Loopwise console: charts from data-chart attributes (no inline scripts: the CSP forbids them),
// confirmations for destructive forms, and the condition builder's "add a row" button.
(function () {
  "use strict";
  var charts = new WeakMap();
  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (charts.has(canvas)) return;
      var config = JSON.parse(canvas.getAttribute("data-chart"));
      config.options = config.options || {};
      config.options.maintainAspectRatio = false;
      config.options.animation = false;
      charts.set(canvas, new window.Chart(canvas, config));
    });
  }
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-row]");
    if (!button) return;
    var list = document.getElementById(button.getAttribute("data-add-row"));
    var template = document.getElementById(button.getAttribute("data-template"));
    if (!list || !template) return;
    var index = list.children.length;
    var html = template.innerHTML.replace(/__N__/g, String(index));
    list.insertAdjacentHTML("beforeend", html);
    var first = list.lastElementChild.querySelector("select, input");
    if (first) first.focus();
    if (window.htmx) window.htmx.process(list.lastElementChild);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove-row]");
    if (!button) return;
    var row = button.closest(".builder-row");
    var form = button.closest("form");
    if (row) row.remove();
    if (form && window.htmx) window.htmx.trigger(form, "change");
  });
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
})();
