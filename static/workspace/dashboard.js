/* The dashboard: charts from the app's own JSON (admin/dashboard/charts/) with
 * the vendored Chart.js, and the attention panel, both refreshed in place. */
(function () {
  "use strict";
  var charts = {};
  var palette = ["#2f6f9f", "#c0392b", "#e6a100", "#6c5ce7", "#16a085", "#7f8c8d",
                 "#d35400", "#8e44ad", "#27ae60", "#2c3e50", "#f39c12", "#1abc9c"];

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") { return; }
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
      return;
    }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false },
                                   config.options || {});
    charts[id] = new Chart(canvas, config);
  }

  function bars(labels, values, label) {
    return { labels: labels, datasets: [{ label: label, data: values, backgroundColor: palette }] };
  }

  function render(data) {
    draw("chart-orders", {
      type: "bar",
      data: { labels: data.labels, datasets: [
        { label: "accepted", data: data.orders.accepted, backgroundColor: "#2f6f9f" },
        { label: "rejected", data: data.orders.rejected, backgroundColor: "#c0392b" },
        { label: "held", data: data.orders.held, backgroundColor: "#e6a100" }] },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
    });
    var reasons = data.rejection_reasons;
    draw("chart-reasons", { type: "bar", data: bars(Object.keys(reasons), Object.values(reasons), "orders"),
                            options: { indexAxis: "y", plugins: { legend: { display: false } } } });
    var detectors = data.alerts_by_detector;
    draw("chart-alerts", { type: "doughnut", data: bars(Object.keys(detectors), Object.values(detectors), "alerts") });
    draw("chart-cancel", {
      type: "line",
      data: { labels: data.labels, datasets: [{ label: "cancels / live orders", data: data.cancel_ratio,
              borderColor: "#6c5ce7", spanGaps: true }] },
      options: { scales: { y: { beginAtZero: true } } }
    });
    var exposure = data.exposure_by_market;
    draw("chart-exposure", { type: "bar",
      data: bars(Object.keys(exposure), Object.values(exposure).map(Number), "gross exposure"),
      options: { plugins: { legend: { display: false } } } });
    var stamp = document.getElementById("ws-charts-updated");
    if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString(); }
    document.getElementById("ws-charts").setAttribute("data-loaded", "1");
  }

  function refreshCharts(section) {
    return fetch(section.getAttribute("data-url"), { credentials: "same-origin",
                 headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(render)
      .catch(function () { /* keep the last charts; next tick retries */ });
  }

  function refreshAttention(panel) {
    return fetch(panel.getAttribute("data-url"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { panel.innerHTML = html; })
      .catch(function () {});
  }

  function start() {
    var section = document.getElementById("ws-charts");
    var panel = document.getElementById("ws-attention");
    if (!section) { return; }
    var seconds = parseInt(section.getAttribute("data-refresh-s"), 10) || 30;
    refreshCharts(section);
    window.setInterval(function () {
      if (document.hidden) { return; }
      refreshCharts(section);
      if (panel) { refreshAttention(panel); }
    }, seconds * 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
