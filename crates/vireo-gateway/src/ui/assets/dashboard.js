// Vireo dashboard: times in the viewer's zone, the RED charts (uPlot), and the live log tail.
// Loaded from /ui/assets under a CSP without 'unsafe-inline'; it writes text, never HTML.
"use strict";

(function () {
  const REFRESH_MS = 2000;

  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      if (el.dataset.local) continue;
      const at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at)) {
        el.textContent = at.toLocaleString();
        el.title = el.getAttribute("datetime");
        el.dataset.local = "1";
      }
    }
  }

  // --- charts ---------------------------------------------------------------------------------
  const CHARTS = {
    traffic: { title: "Requests and errors per bucket", series: [["requests", "Requests", "#2b6cb0"], ["errors", "Errors", "#c53030"]] },
    duration: { title: "Duration (ms)", series: [["p50_ms", "p50", "#2f855a"], ["p99_ms", "p99", "#b7791f"]] },
    cold: { title: "Cold starts", series: [["cold_starts", "Cold starts", "#6b46c1"]] },
  };

  function chartWidth(el) {
    return Math.max(240, Math.min(el.parentElement.clientWidth - 8, 900));
  }

  function drawCharts(section) {
    const url = section.dataset.activity;
    const totals = section.querySelector(".totals");
    const plots = {};
    async function refresh() {
      let data;
      try {
        const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        data = await answer.json();
      } catch (error) {
        totals.textContent = "Could not load the chart data: " + error.message;
        return;
      }
      const sum = (xs) => xs.reduce((a, b) => a + b, 0);
      const requests = sum(data.requests);
      const errors = sum(data.errors);
      section.dataset.requests = String(requests);
      totals.textContent = requests + " requests, " + errors + " errors, " + sum(data.cold_starts) + " cold starts" +
        (data.truncated ? " (from the newest records only: older buckets are incomplete)" : "");
      for (const el of section.querySelectorAll("[data-chart]")) {
        const kind = CHARTS[el.dataset.chart];
        const columns = [data.times].concat(kind.series.map(([key]) => data[key]));
        if (plots[el.dataset.chart]) {
          plots[el.dataset.chart].setData(columns);
          continue;
        }
        const options = {
          title: kind.title,
          width: chartWidth(el),
          height: 180,
          series: [{}].concat(kind.series.map(([, label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false }))),
          axes: [{}, { size: 50 }],
        };
        plots[el.dataset.chart] = new uPlot(options, columns, el);
      }
    }
    refresh();
    setInterval(refresh, REFRESH_MS);
    window.addEventListener("resize", () => {
      for (const el of section.querySelectorAll("[data-chart]")) {
        const plot = plots[el.dataset.chart];
        if (plot) plot.setSize({ width: chartWidth(el), height: 180 });
      }
    });
  }

  // --- live log tail ----------------------------------------------------------------------------
  const MAX_LINES = 2000;

  function tailLogs(list) {
    const pause = document.getElementById("pause");
    const filter = document.getElementById("filter");
    const state = document.getElementById("tail-state");
    const empty = document.getElementById("log-empty");
    let paused = false;
    const held = [];

    function matches(li) {
      const wanted = filter.value.trim().toLowerCase();
      return !wanted || li.textContent.toLowerCase().includes(wanted);
    }
    function applyFilter() {
      for (const li of list.children) li.hidden = !matches(li);
    }
    function add(line) {
      const li = document.createElement("li");
      li.className = "stream-" + line.stream;
      const at = document.createElement("time");
      at.setAttribute("datetime", line.at);
      at.textContent = line.at;
      const inv = document.createElement("a");
      inv.className = "inv";
      inv.href = "/ui/invocations/" + encodeURIComponent(line.invocation_id);
      inv.textContent = line.invocation_id.slice(-8);
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = line.line;
      li.append(at, " ", inv, " ", text);
      li.hidden = !matches(li);
      list.append(li);
      localTimes(li);
      while (list.children.length > MAX_LINES) list.firstElementChild.remove();
      if (empty) empty.hidden = true;
    }

    pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused) held.splice(0).forEach(add);
      state.textContent = paused ? "paused (" + held.length + " held)" : "live";
    });
    filter.addEventListener("input", applyFilter);

    let url = list.dataset.stream;
    const source = new EventSource(url);
    source.onopen = () => { state.textContent = paused ? "paused" : "live"; };
    source.onerror = () => { state.textContent = "reconnecting…"; };
    source.onmessage = (event) => {
      const line = JSON.parse(event.data);
      if (paused) {
        held.push(line);
        state.textContent = "paused (" + held.length + " held)";
      } else {
        add(line);
      }
    };
  }

  function start() {
    localTimes(document);
    document.body.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));
    for (const section of document.querySelectorAll("section.charts[data-activity]")) drawCharts(section);
    const log = document.getElementById("log");
    if (log && log.dataset.stream) tailLogs(log);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
