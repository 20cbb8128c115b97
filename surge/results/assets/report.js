/* surge's HTML report and live dashboard: draws one report document (surge/results/report_data.py).
 *
 * The document is inlined in the JSON script element #surge-data. When the body has a
 * data-events attribute (the live dashboard), the page also subscribes to that Server-Sent Events
 * stream: each "message" is a new document, the "final" event the end-of-test one, after which the
 * stream is closed. Charts are uPlot (vendored, inlined by the renderer); a chart whose series keep
 * their labels is updated in place with setData, so a live page does not flicker.
 *
 * Every string from the run (scenario names, tag values, check names, threshold sources) goes into
 * the page through textContent, never parsed as markup.
 */
(function () {
  "use strict";

  var PALETTE = ["#5b4bdb", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#a855f7", "#14b8a6", "#ec4899",
                 "#84cc16", "#64748b", "#f97316", "#22c55e"];
  var charts = {};  // id -> {u, sig, box}

  // ------------------------------------------------------------------ formatting

  function fmtElapsed(s) {
    if (s == null || !isFinite(s)) return "–";
    var neg = s < 0; s = Math.abs(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var secText = (Math.abs(sec - Math.round(sec)) < 1e-6 ? Math.round(sec) : sec.toFixed(1)) + "s";
    var out = h ? h + "h" + (m ? m + "m" : "") : m ? m + "m" + (sec ? secText : "") : secText;
    return (neg ? "-" : "") + out;
  }
  function fmtNum(x, digits) {
    if (x == null || !isFinite(x)) return "–";
    var a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (x / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (x / 1e3).toFixed(1) + "k";
    if (digits != null) return x.toFixed(digits);
    if (Number.isInteger(x)) return String(x);
    return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
  }
  function fmtMs(ms) {
    if (ms == null || !isFinite(ms)) return "–";
    if (ms === 0) return "0";
    if (Math.abs(ms) >= 60000) return fmtElapsed(ms / 1000);
    if (Math.abs(ms) >= 1000) return (ms / 1000).toFixed(2) + "s";
    if (Math.abs(ms) >= 1) return ms.toFixed(ms >= 100 ? 0 : 1) + "ms";
    return (ms * 1000).toFixed(0) + "µs";
  }
  function fmtBytes(b) {
    if (b == null || !isFinite(b)) return "–";
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (Math.abs(b) >= 1000 && i < units.length - 1) { b /= 1000; i++; }
    return (i ? b.toFixed(b >= 100 ? 0 : 1) : String(Math.round(b))) + " " + units[i];
  }
  function fmtPct(share) {
    if (share == null || !isFinite(share)) return "–";
    var p = share * 100;
    return (p === 0 || p === 100 ? p.toFixed(0) : p < 0.1 ? p.toFixed(3) : p.toFixed(2)) + "%";
  }
  function fmtUnit(x, unit) {
    if (unit === "ms") return fmtMs(x);
    if (unit === "bytes") return fmtBytes(x);
    if (unit === "share") return fmtPct(x);
    return fmtNum(x);
  }

  // ------------------------------------------------------------------ DOM helpers (textContent only)

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function table(headers, rows) {
    // headers: [[text, numeric]], rows: [[text | Node, ...]]
    var head = el("tr", null, headers.map(function (h) { return el("th", {text: h[0], cls: h[1] ? "num" : ""}); }));
    var body = rows.map(function (r) {
      return el("tr", null, r.map(function (cell, i) {
        var td = el("td", {cls: headers[i] && headers[i][1] ? "num" : ""});
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
        return td;
      }));
    });
    return el("table", {cls: "data"}, [el("thead", null, [head]), el("tbody", null, body)]);
  }
  function section(title, nodes) {
    return el("section", null, [el("h2", {text: title})].concat(nodes));
  }

  // ------------------------------------------------------------------ reading the timeline

  function column(tl, key, stat) {
    var s = tl.series[key];
    if (!s || !s.values[stat]) return null;
    return [null].concat(s.values[stat]);  // the leading null is t = 0
  }
  function perSecond(tl, values) {
    if (!values) return null;
    var w = tl.bucketS || 1;
    return values.map(function (v) { return v == null ? null : v / w; });
  }
  function hasData(values) {
    if (!values) return false;
    for (var i = 0; i < values.length; i++) if (values[i] != null) return true;
    return false;
  }
  function scaled(values, k) {
    return values ? values.map(function (v) { return v == null ? null : v * k; }) : null;
  }

  // ------------------------------------------------------------------ charts

  // spec: {id, title, note, series: [{label, values, unit, axis: "y"|"y2", color, dash}], units: {y: .., y2: ..},
  //        axisLabels: {y: "requests/s", y2: ..}}
  function chartSpecs(doc) {
    var tl = doc.timeline, specs = [];
    var xs = [0].concat(tl.t || []);
    var reqRate = column(tl, "http_reqs", "rate");
    var failed = perSecond(tl, column(tl, "http_req_failed", "passes"));
    var vus = [null].concat(tl.vus || []);

    specs.push({section: "overview", id: "vus-rps", title: "Virtual users and request rate", units: {y: "", y2: ""},
      axisLabels: {y: "VUs", y2: "requests/s"},
      series: [
        {label: "VUs", values: vus, axis: "y", color: "#64748b", unit: "", dash: [5, 4]},
        {label: "requests/s", values: reqRate, axis: "y2", color: PALETTE[0], unit: "/s"},
        {label: "failed/s", values: failed, axis: "y2", color: "#ef4444", unit: "/s"},
      ]});
    specs.push({section: "overview", id: "latency", title: "Request duration percentiles (http_req_duration)",
      units: {y: "ms"}, axisLabels: {y: "duration"},
      series: [
        {label: "p50", values: column(tl, "http_req_duration", "med"), axis: "y", color: "#10b981", unit: "ms"},
        {label: "p95", values: column(tl, "http_req_duration", "p(95)"), axis: "y", color: "#f59e0b", unit: "ms"},
        {label: "p99", values: column(tl, "http_req_duration", "p(99)"), axis: "y", color: "#ef4444", unit: "ms"},
        {label: "max", values: column(tl, "http_req_duration", "max"), axis: "y", color: "#94a3b8", unit: "ms", dash: [3, 3]},
      ]});
    var kinds = doc.failureKinds || [];
    specs.push({section: "overview", id: "failures", title: "Failed requests by status and error code",
      units: {y: ""}, axisLabels: {y: "failures/s"}, emptyNote: "No failed requests.",
      series: kinds.map(function (k, i) {
        var label = k.status === "other" ? "other kinds" :
          "status " + (k.status === "0" ? "0 (no response)" : k.status) + (k.errorCode ? " · error " + k.errorCode : "");
        return {label: label, values: column(tl, k.key, "rate"), axis: "y", color: PALETTE[(i + 4) % PALETTE.length], unit: "/s"};
      })});
    specs.push({section: "overview", id: "iterations", title: "Iterations", units: {y: "", y2: "ms"},
      axisLabels: {y: "iterations/s", y2: "iteration duration"},
      series: [
        {label: "iterations/s", values: column(tl, "iterations", "rate"), axis: "y", color: PALETTE[1], unit: "/s"},
        {label: "iteration_duration p95", values: column(tl, "iteration_duration", "p(95)"), axis: "y2", color: PALETTE[5], unit: "ms"},
      ]});
    specs.push({section: "overview", id: "transfer", title: "Data transfer", units: {y: "bytes"},
      axisLabels: {y: "bytes/s"},
      series: [
        {label: "received/s", values: column(tl, "data_received", "rate"), axis: "y", color: PALETTE[2], unit: "bytes"},
        {label: "sent/s", values: column(tl, "data_sent", "rate"), axis: "y", color: PALETTE[1], unit: "bytes"},
      ]});
    specs.push({section: "overview", id: "checks", title: "Checks passed", units: {y: "share"},
      axisLabels: {y: "passed"}, range: [0, 1],
      series: [
        {label: "checks passed", values: column(tl, "checks", "rate"), axis: "y", color: PALETTE[2], unit: "share"},
        {label: "http_req_failed", values: column(tl, "http_req_failed", "rate"), axis: "y", color: "#ef4444", unit: "share"},
      ]});
    var phases = [["http_req_waiting", "waiting"], ["http_req_connecting", "connecting"],
                  ["http_req_tls_handshaking", "TLS handshaking"], ["http_req_blocked", "blocked"],
                  ["http_req_sending", "sending"], ["http_req_receiving", "receiving"]];
    specs.push({section: "timings", id: "phases", title: "Request phases, p95 per interval", units: {y: "ms"},
      axisLabels: {y: "duration"},
      series: phases.map(function (p, i) {
        return {label: p[1], values: column(tl, p[0], "p(95)"), axis: "y", color: PALETTE[i], unit: "ms"};
      })});
    specs.push({section: "timings", id: "avg-duration", title: "Request duration, average and p90", units: {y: "ms"},
      axisLabels: {y: "duration"},
      series: [
        {label: "avg", values: column(tl, "http_req_duration", "avg"), axis: "y", color: PALETTE[0], unit: "ms"},
        {label: "p90", values: column(tl, "http_req_duration", "p(90)"), axis: "y", color: PALETTE[3], unit: "ms"},
      ]});

    var scen = doc.scenarios || [];
    if (scen.length) {
      specs.push({section: "scenarios", id: "scen-rps", title: "Requests/s by scenario", units: {y: ""},
        axisLabels: {y: "requests/s"},
        series: scen.map(function (s, i) {
          return {label: s, values: column(tl, "http_reqs{scenario:" + s + "}", "rate"), axis: "y", color: PALETTE[i % PALETTE.length], unit: "/s"};
        })});
      specs.push({section: "scenarios", id: "scen-p95", title: "p95 request duration by scenario", units: {y: "ms"},
        axisLabels: {y: "duration"},
        series: scen.map(function (s, i) {
          return {label: s, values: column(tl, "http_req_duration{scenario:" + s + "}", "p(95)"), axis: "y", color: PALETTE[i % PALETTE.length], unit: "ms"};
        })});
    }
    var w = tl.workers || {names: [], requests: []};
    if (w.names.length) {
      specs.push({section: "workers", id: "worker-rps", title: "Requests/s by worker", units: {y: ""},
        axisLabels: {y: "requests/s"},
        note: w.names.length >= 32 ? "The first 32 workers; the table has every worker's totals." : "",
        series: w.names.map(function (n, i) {
          return {label: n, values: perSecond(tl, [null].concat(w.requests[i] || [])), axis: "y", color: PALETTE[i % PALETTE.length], unit: "/s"};
        })});
    }
    specs.forEach(function (s) {
      s.xs = xs;
      s.series = s.series.filter(function (x) { return hasData(x.values); });
    });
    return specs;
  }

  function axisValues(unit) {
    return function (u, ticks) {
      return ticks.map(function (v) {
        return unit === "share" ? +(v * 100).toFixed(2) + "%" : unit === "bytes" ? fmtBytes(v) : fmtUnit(v, unit);
      });
    };
  }

  function chartWidth(box) { return Math.max(280, box.clientWidth - 16); }

  function makeChart(spec, box) {
    var hasY2 = spec.series.some(function (s) { return s.axis === "y2"; });
    var scales = {x: {time: false}, y: {range: function (u, min, max) {
      return spec.range || [0, max > 0 ? max * 1.08 : 1];
    }}};
    if (hasY2) scales.y2 = {range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; }};
    var axes = [
      {label: "elapsed time", values: function (u, ticks) { return ticks.map(fmtElapsed); }, stroke: "#687082",
       grid: {stroke: "#eef0f4"}, ticks: {stroke: "#e3e6ec"}},
      {label: spec.axisLabels.y, scale: "y", values: axisValues(spec.units.y), size: 64, stroke: "#687082",
       grid: {stroke: "#eef0f4"}, ticks: {stroke: "#e3e6ec"}},
    ];
    if (hasY2) axes.push({label: spec.axisLabels.y2, scale: "y2", side: 1, values: axisValues(spec.units.y2),
                          size: 64, stroke: "#687082", grid: {show: false}});
    var series = [{label: "elapsed", value: function (u, v) { return fmtElapsed(v); }}].concat(spec.series.map(function (s) {
      return {label: s.label, scale: s.axis, stroke: s.color, width: 2, dash: s.dash, spanGaps: false,
              // a lone point has no segment to draw: show the points until there are lines
              points: {show: function (u) { return u.data[0].length <= 3; }},
              value: function (u, v) { return v == null ? "–" : s.unit === "/s" ? fmtNum(v) + "/s" :
                                        s.unit === "bytes" ? fmtBytes(v) + "/s" : fmtUnit(v, s.unit); }};
    }));
    var data = [spec.xs].concat(spec.series.map(function (s) { return s.values; }));
    return new uPlot({width: chartWidth(box), height: 240, scales: scales, axes: axes, series: series,
                      legend: {live: true}, cursor: {drag: {x: true, y: false}}}, data, box);
  }

  function renderChart(spec) {
    var sig = spec.series.map(function (s) { return s.label + "@" + s.axis; }).join("|");
    var entry = charts[spec.id];
    if (!entry) {
      entry = charts[spec.id] = {box: el("div", {cls: "chart", "data-chart": spec.id}), u: null, sig: null};
    }
    var box = entry.box;
    if (!spec.series.length) {
      if (entry.u) { entry.u.destroy(); entry.u = null; entry.sig = null; }
      box.textContent = "";
      box.appendChild(el("h3", {text: spec.title}));
      box.appendChild(el("p", {cls: "note", text: spec.emptyNote || "No data yet."}));
      box.classList.add("no-data");
      return box;
    }
    box.classList.remove("no-data");
    var data = [spec.xs].concat(spec.series.map(function (s) { return s.values; }));
    if (entry.u && entry.sig === sig) {
      entry.u.setData(data);
    } else {
      if (entry.u) entry.u.destroy();
      box.textContent = "";
      box.appendChild(el("h3", {text: spec.title}));
      if (spec.note) box.appendChild(el("p", {cls: "note", text: spec.note}));
      entry.u = null;
      entry.spec = spec;
      entry.sig = sig;
      entry.pending = true;  // made once the box is in the document (its width is known)
    }
    entry.spec = spec;
    return box;
  }

  // ------------------------------------------------------------------ the page

  function statusBadge(doc) {
    var failed = (doc.thresholds || []).some(function (t) { return !t.ok; });
    if (doc.live && !doc.finished) {
      var of = doc.maxDurationS ? " / " + fmtElapsed(Math.round(doc.maxDurationS)) : "";
      return el("span", {cls: "badge", text: "running " + fmtElapsed(Math.round(doc.elapsedS)) + of});
    }
    return el("span", {cls: "badge " + (failed ? "failed" : "done"),
                       text: (failed ? "thresholds crossed" : "finished") + " · " + fmtElapsed(Math.round(doc.elapsedS * 10) / 10)});
  }

  function tiles(doc) {
    var s = doc.stats || {};
    var items = [
      ["requests", fmtNum(s.requests)], ["request rate", fmtNum(s.requestRate) + "/s"],
      ["failed requests", fmtPct(s.failedShare)], ["p95 duration", fmtMs(s.p95Ms)],
      ["checks passed", fmtPct(s.checksShare)], ["iterations", fmtNum(s.iterations)],
      ["peak VUs", fmtNum(s.vusMax)], ["data received", fmtBytes(s.dataReceived)], ["data sent", fmtBytes(s.dataSent)],
    ];
    return el("div", {cls: "tiles"}, items.map(function (it) {
      return el("div", {cls: "tile"}, [el("div", {cls: "k", text: it[0]}), el("div", {cls: "v", text: it[1]})]);
    }));
  }

  function thresholdsTable(doc) {
    var rows = (doc.thresholds || []).map(function (t) {
      return [el("span", {cls: t.ok ? "ok" : "bad", text: t.ok ? "✓ passed" : "✗ crossed"}),
              el("code", {text: t.metric}), el("code", {text: t.source}), fmtUnit(t.observed, t.unit)];
    });
    if (!rows.length) return el("p", {cls: "empty", text: "The scenario has no thresholds."});
    return table([["", false], ["metric", false], ["threshold", false], ["observed", true]], rows);
  }

  function checksTable(doc) {
    var checks = doc.checks || [];
    if (!checks.length) {
      var share = (doc.stats || {}).checksShare;
      return el("p", {cls: "empty", text: doc.live && !doc.finished
        ? "Checks passed so far: " + fmtPct(share) + " (each check's counts come with the end-of-test summary)."
        : "The scenario has no checks."});
    }
    return table([["check", false], ["group", false], ["passed", true], ["failed", true], ["pass rate", true]],
      checks.map(function (c) {
        var total = c.passes + c.fails;
        var group = c.path.slice(0, Math.max(0, c.path.length - c.name.length - 2)).replace(/^::/, "");
        return [el("span", {cls: c.fails ? "bad" : "ok", text: (c.fails ? "✗ " : "✓ ") + c.name}), group || "–",
                fmtNum(c.passes), fmtNum(c.fails), fmtPct(total ? c.passes / total : null)];
      }));
  }

  function scenarioTable(doc) {
    return table([["scenario", false], ["requests", true], ["failed", true], ["avg duration", true],
                  ["p95 duration", true], ["iterations", true]],
      (doc.scenarioRows || []).map(function (r) {
        return [r.scenario, fmtNum(r.requests), fmtPct(r.failedShare), fmtMs(r.avgMs), fmtMs(r.p95Ms),
                fmtNum(r.iterations)];
      }));
  }

  // Locust's statistics table, from the fleet's merged rows (surge/results/endpoints.py).
  function endpointTable(doc) {
    var ep = doc.endpoints || {};
    var rows = ep.rows || [];
    if (!rows.length) return el("p", {cls: "empty", text: doc.live && !doc.finished ? "No request yet." : "No requests."});
    var multi = rows.some(function (r) { return r.scenario !== rows[0].scenario; });
    var heads = [["method", false], ["name", false]];
    if (multi) heads.push(["scenario", false]);
    heads = heads.concat([["group", false], ["requests", true], ["failures", true], ["req/s", true], ["avg", true],
      ["min", true], ["med", true], ["p90", true], ["p95", true], ["p99", true], ["max", true], ["received", true],
      ["sent", true]]);
    var nodes = [table(heads, rows.map(function (r) {
      var d = r.duration || {};
      var kinds = (r.failuresByKind || []).map(function (k) { return k.status + "/" + k.errorCode + "×" + fmtNum(k.count); });
      var cells = [r.method || "–", el("code", {text: r.name})];
      if (multi) cells.push(r.scenario || "–");
      return cells.concat([(r.group || "").replace(/^::/, "") || "–", fmtNum(r.requests),
        el("span", {cls: r.failures ? "bad" : "", text: fmtNum(r.failures) + (kinds.length ? " (" + kinds.join(", ") + ")" : "")}),
        fmtNum(r.rate), fmtMs(d.avg), fmtMs(d.min), fmtMs(d.med), fmtMs(d["p(90)"]), fmtMs(d["p(95)"]), fmtMs(d["p(99)"]),
        fmtMs(d.max), fmtBytes(r.dataReceived), fmtBytes(r.dataSent)]);
    }))];
    if (ep.hint) nodes.push(el("p", {cls: "banner", text: ep.hint}));
    return el("div", null, nodes);
  }

  function workerTable(doc) {
    var ws = doc.workers || [];
    if (!ws.length) return null;
    return table([["worker", false], ["processes", true], ["requests", true], ["failures", true], ["CPU mean", true],
                  ["CPU max", true], ["loop lag mean", true], ["loop lag max", true], ["clock offset", true], ["state", false]],
      ws.map(function (w) {
        var state = w.lost ? "lost" : w.overloaded ? "overloaded" : "ok";
        return [String(w.name), fmtNum(w.processes), fmtNum(w.requests), fmtNum(w.failures), fmtPct(w.cpuMean),
                fmtPct(w.cpuMax), fmtMs(w.loopLagMeanMs), fmtMs(w.loopLagMaxMs), fmtMs(w.clockOffsetMs),
                el("span", {cls: state === "ok" ? "ok" : "bad", text: state})];
      }));
  }

  function metricsTable(doc) {
    var ms = doc.metrics || [];
    if (!ms.length) return null;
    return table([["metric", false], ["type", false], ["values", false]], ms.map(function (m) {
      var unit = m.contains === "time" ? "ms" : m.contains === "data" ? "bytes" : "";
      var parts = Object.keys(m.values).map(function (k) {
        var v = m.values[k];
        var text = k === "rate" && m.type === "rate" ? fmtPct(v) :
          k === "rate" ? fmtNum(v) + "/s" : (k === "count" || k === "passes" || k === "fails") ? fmtNum(v) : fmtUnit(v, unit);
        return k + "=" + text;
      });
      return [el("code", {text: m.key}), m.type, parts.join("  ")];
    }));
  }

  function render(doc) {
    var app = document.getElementById("app");
    var specs = chartSpecs(doc);
    var bySection = {};
    specs.forEach(function (s) { (bySection[s.section] = bySection[s.section] || []).push(renderChart(s)); });
    var grid = function (name) { return el("div", {cls: "grid"}, bySection[name] || []); };
    var nodes = [
      el("header", null, [el("h1", {text: doc.title || "surge report"}), statusBadge(doc),
        el("span", {cls: "sub", text: doc.live ? "live dashboard · updated about once a second" :
          "interval " + fmtElapsed(doc.timeline.bucketS) + " · " + (doc.timeline.t || []).length + " points"})]),
    ];
    if (window.__surgeBanner) nodes.push(el("div", {cls: "banner", text: window.__surgeBanner}));
    nodes.push(tiles(doc));
    nodes.push(section("Thresholds", [thresholdsTable(doc)]));
    nodes.push(section("Overview", [grid("overview")]));
    nodes.push(section("Timings", [grid("timings")]));
    nodes.push(section("Requests by endpoint", [endpointTable(doc)]));
    if ((doc.scenarios || []).length) nodes.push(section("Scenarios", [grid("scenarios"), el("div", {style: "height:10px"}), scenarioTable(doc)]));
    var wt = workerTable(doc);
    if (bySection.workers || wt) nodes.push(section("Workers", [grid("workers"), el("div", {style: "height:10px"}), wt]));
    nodes.push(section("Checks", [checksTable(doc)]));
    var mt = metricsTable(doc);
    if (mt) nodes.push(section("All metrics (end of test)", [mt]));
    nodes.push(el("footer", {text: "surge · times in milliseconds unless marked · per-interval values: each point covers " +
      fmtElapsed(doc.timeline.bucketS) + " ending at its time"}));
    app.textContent = "";
    nodes.forEach(function (n) { app.appendChild(n); });
    for (var id in charts) {
      var c = charts[id];
      if (c.pending && c.spec && c.spec.series.length) {
        c.pending = false;
        c.u = makeChart(c.spec, c.box);
      }
    }
  }

  window.addEventListener("resize", function () {
    for (var id in charts) {
      var c = charts[id];
      if (c.u) c.u.setSize({width: chartWidth(c.box), height: 240});
    }
  });

  var doc = JSON.parse(document.getElementById("surge-data").textContent);
  render(doc);
  // For tests and the curious: how many documents were drawn, and whether the last was the run's end.
  window.__surgeRendered = 1;
  window.__surgeFinished = !!doc.finished;
  window.__surgePoints = (doc.timeline.t || []).length;

  var events = document.body.getAttribute("data-events");
  if (events && !doc.finished) {
    var source = new EventSource(events);
    var onDoc = function (e) {
      doc = JSON.parse(e.data);
      render(doc);
      window.__surgeRendered += 1;
      window.__surgeFinished = !!doc.finished;
      window.__surgePoints = (doc.timeline.t || []).length;
    };
    source.onmessage = onDoc;
    source.addEventListener("final", function (e) {
      source.close();
      window.__surgeBanner = "The run is over: these are its final numbers. The dashboard stops when surge exits; " +
        "use --report FILE.html for a file to keep.";
      onDoc(e);
    });
    source.onerror = function () {
      // surge has exited (it does right after the run): keep the last data on the page, do not retry.
      source.close();
      if (!doc.finished) {
        window.__surgeBanner = "Lost the connection to surge (the run has ended or the coordinator stopped): " +
          "the charts show the last data received.";
        render(doc);
      }
    };
  }
})();
