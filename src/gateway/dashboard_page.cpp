// The dashboard page: HTML, CSS and script in one raw string literal, so
// that the gateway serves it from memory and the page needs nothing else
// (see dashboard_page.hpp). Edit it as HTML; the delimiter below never
// occurs in it.
#include "trellis/gateway/dashboard_page.hpp"

namespace trellis::gateway {
namespace {

constexpr std::string_view k_page = R"dashboard_html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<!-- An empty icon: without it the browser asks the gateway for /favicon.ico. -->
<link rel="icon" href="data:,">
<title>trellis gateway dashboard</title>
<style>
  :root {
    --bg: #f4f5f7; --panel: #ffffff; --ink: #1f2328; --muted: #656d76; --line: #d0d7de;
    --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e;
  }
  * { box-sizing: border-box; }
  body {
    margin: 0; padding: 12px 16px 16px; background: var(--bg); color: var(--ink);
    font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 16px; margin-bottom: 10px; }
  h1 { font-size: 17px; margin: 0; font-weight: 600; }
  .summary { color: var(--muted); font-variant-numeric: tabular-nums; }
  .summary b { color: var(--ink); font-weight: 600; }
  .status { margin-left: auto; padding: 2px 10px; border-radius: 10px; font-weight: 600; }
  .status.ok { background: #dafbe1; color: var(--ok); }
  .status.wait { background: #eaeef2; color: var(--muted); }
  .status.err { background: #ffebe9; color: var(--bad); }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 10px; }
  .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px 6px; min-width: 0; }
  .panel h2 {
    display: flex; flex-wrap: wrap; gap: 0 8px; align-items: baseline;
    font-size: 13px; font-weight: 600; margin: 0 0 2px;
  }
  .latest { margin-left: auto; text-align: right; font-variant-numeric: tabular-nums; }
  .legend { display: flex; flex-wrap: wrap; gap: 2px 12px; color: var(--muted); font-size: 12px; min-height: 17px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
  canvas { display: block; width: 100%; height: 190px; }
  .tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 10px; margin-top: 10px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 600; }
  td.num, th.num { text-align: right; }
  tr.first td { border-top: 1px solid var(--line); }
  .state-healthy, .state-closed { color: var(--ok); }
  .state-unhealthy, .state-open { color: var(--bad); font-weight: 600; }
  .state-ejected, .state-half_open { color: var(--warn); font-weight: 600; }
  .empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body data-rendered="false" data-samples="0">
<header>
  <h1>trellis gateway</h1>
  <span class="summary">generation <b id="generation">&ndash;</b></span>
  <span class="summary"><b id="current-rps">&ndash;</b> req/s</span>
  <span class="summary"><b id="in-flight">&ndash;</b> in flight</span>
  <span class="summary">last sample <b id="last-sample">&ndash;</b></span>
  <span id="status" class="status wait">connecting&hellip;</span>
</header>

<main>
<div class="grid">
  <section class="panel chart" id="chart-requests" data-points="0">
    <h2>Requests per second<span class="latest" id="latest-requests">&ndash;</span></h2>
    <div class="legend"></div><canvas></canvas>
  </section>
  <section class="panel chart" id="chart-latency" data-points="0">
    <h2>Latency, ms<span class="latest" id="latest-latency">&ndash;</span></h2>
    <div class="legend"></div><canvas></canvas>
  </section>
  <section class="panel chart" id="chart-status" data-points="0">
    <h2>Status codes/s<span class="latest" id="latest-status">&ndash;</span></h2>
    <div class="legend"></div><canvas></canvas>
  </section>
  <section class="panel chart" id="chart-health" data-points="0">
    <h2>Healthy hosts<span class="latest" id="latest-health">&ndash;</span></h2>
    <div class="legend"></div><canvas></canvas>
  </section>
  <section class="panel chart" id="chart-cache" data-points="0">
    <h2>Cache hit ratio<span class="latest" id="latest-cache">&ndash;</span></h2>
    <div class="legend"></div><canvas></canvas>
  </section>
  <section class="panel chart" id="chart-ratelimit" data-points="0">
    <h2>Rate-limited/s (429)<span class="latest" id="latest-ratelimit">&ndash;</span></h2>
    <div class="legend"></div><canvas></canvas>
  </section>
</div>

<div class="tables">
  <section class="panel">
    <h2>Upstream hosts</h2>
    <table id="hosts" data-rows="0">
      <thead><tr><th>Cluster</th><th>Host</th><th>State</th><th>Breaker</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="panel">
    <h2>Routes (since start)</h2>
    <table id="routes" data-rows="0">
      <thead><tr><th>Route</th><th class="num">Requests</th><th class="num">5xx</th>
        <th class="num">Error %</th><th class="num">p99 ms</th><th>Breaker</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</div>
</main>

<script>
'use strict';
// The page polls its own path + "/data" (see dashboard_page.hpp for the
// format), one request at a time, and redraws everything from each answer.
// Nothing is loaded from anywhere else.
(function () {
  const DATA_URL = location.pathname.replace(/\/+$/, '') + '/data';
  const DEFAULT_INTERVAL_MS = 1000;
  // Always show at least a minute, so that the first samples after a start
  // do not stretch across the whole width.
  const MIN_WINDOW_SAMPLES = 60;

  const COLORS = {
    requests: '#0969da', p50: '#0969da', p99: '#bf3989', cache: '#1a7f37', limited: '#bc4c00',
    '1xx': '#8c959f', '2xx': '#2da44e', '3xx': '#54aeff', '4xx': '#d4a72c', '5xx': '#cf222e',
    axis: '#d0d7de', grid: '#eaeef2', label: '#656d76',
  };
  const CLUSTER_COLORS = ['#0969da', '#8250df', '#1a7f37', '#bc4c00', '#bf3989', '#1b7c83', '#9a6700', '#57606a'];
  const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
  const grouped = new Intl.NumberFormat('en-US');

  const $ = (id) => document.getElementById(id);
  let lastData = null;

  // --- numbers and times -------------------------------------------------

  // A number from the JSON, or null for null, absent or not a finite number.
  function num(v) {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  // Short and still telling: 12,345, 1234, 41, 12.8, 1.3, 0.72, 0.012,
  // <0.001; no trailing zeros.
  function fmt(v) {
    if (v === null) return '\u2013';
    const a = Math.abs(v);
    let s;
    if (a === 0) return '0';
    if (a >= 100) s = v.toFixed(0);
    else if (a >= 1) s = v.toFixed(1);
    else if (a >= 0.001) s = v.toPrecision(2);
    else return v > 0 ? '<0.001' : '>-0.001';
    if (s.indexOf('.') >= 0) s = s.replace(/0+$/, '').replace(/\.$/, '');
    return a >= 10000 ? grouped.format(Number(s)) : s;
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function clock(ms, seconds) {
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + (seconds ? ':' + pad2(d.getSeconds()) : '');
  }

  // The smallest of 1, 2, 2.5, 5 times a power of ten at least `raw`
  // (no 2.5 below 10 for integer axes: host counts have no quarters).
  function niceStep(raw, integer) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    let m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    if (f > 2 && f <= 2.5 && (!integer || p >= 10)) m = 2.5;
    const step = m * p;
    return integer ? Math.max(1, step) : step;
  }

  // The decimals that show every multiple of `step` exactly.
  function decimalsFor(step) {
    let d = 0;
    while (d < 6 && Math.abs(Math.round(step * Math.pow(10, d)) - step * Math.pow(10, d)) > 1e-6) d++;
    return d;
  }

  function axisLabel(v, step) {
    if (step >= 1000) return v === 0 ? '0' : (v / 1000).toFixed(decimalsFor(step / 1000)) + 'k';
    return v === 0 ? '0' : v.toFixed(decimalsFor(step));
  }

  // --- drawing ---------------------------------------------------------

  // A canvas sized to its CSS box at the screen's pixel ratio, and the box.
  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(100, canvas.clientWidth), h = Math.max(60, canvas.clientHeight);
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx: ctx, w: w, h: h };
  }

  function setLegend(panel, series) {
    const legend = panel.querySelector('.legend');
    legend.textContent = '';
    for (const s of series) {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = s.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.label));
      legend.appendChild(item);
    }
  }

  // Draws one chart and returns how many points it drew (non-null values,
  // summed over its series).
  //   spec.times:    sample times (unix ms), oldest first
  //   spec.series:   [{label, color, values: [number|null]}]
  //   spec.stacked:  values add up (status classes); spec.step: a value
  //                  holds until the next one (host counts)
  //   spec.fixedMax: the top of the y axis (100 for percentages)
  //   spec.floor:    the y axis reaches at least this (the hosts there are)
  //   spec.integer:  y ticks are whole numbers
  //   spec.interval: the sampling interval, in ms
  function drawChart(panel, spec) {
    setLegend(panel, spec.series);
    const { ctx, w, h } = prepare(panel.querySelector('canvas'));
    const left = 46, right = 10, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    const times = spec.times, n = times.length;
    const interval = spec.interval;

    // The x range: the samples' span, at least MIN_WINDOW_SAMPLES intervals.
    const tMax = n ? times[n - 1] : Date.now();
    const tMin = Math.min(n ? times[0] : tMax, tMax - MIN_WINDOW_SAMPLES * interval);
    const x = (t) => left + (tMax === tMin ? pw : ((t - tMin) / (tMax - tMin)) * pw);

    // Stacked series are drawn as running sums.
    const lines = spec.series.map((s) => ({ color: s.color, values: s.values.slice(), base: null }));
    if (spec.stacked) {
      let below = new Array(n).fill(0);
      for (const l of lines) {
        l.base = below;
        l.values = l.values.map((v, i) => (v === null || below[i] === null ? null : below[i] + v));
        below = l.values;
      }
    }

    // The y range, rounded up to a whole number of nice steps.
    let yMax = spec.fixedMax || 0, step;
    if (!spec.fixedMax) {
      for (const l of lines) for (const v of l.values) if (v !== null && v > yMax) yMax = v;
      if (spec.floor && spec.floor > yMax) yMax = spec.floor;
      if (!(yMax > 0)) yMax = 1;
      step = niceStep(yMax / 4, spec.integer);
      yMax = Math.ceil(yMax / step - 1e-9) * step;
    } else {
      step = spec.fixedMax / 4;
    }
    const y = (v) => top + ph - (v / yMax) * ph;

    // Grid and labels.
    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.label;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let k = 0; k * step <= yMax + step / 2; k++) {
      const v = k * step;
      const yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = v === 0 ? COLORS.axis : COLORS.grid;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + pw, yy); ctx.stroke();
      ctx.fillText(axisLabel(v, step), left - 6, yy);
    }
    const span = tMax - tMin;
    const tickSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
    // The shortest tick step whose labels do not touch each other.
    const room = ctx.measureText('00:00:00').width + 24;
    let tStep = tickSteps[tickSteps.length - 1] * 1000;
    for (const s of tickSteps) if ((s * 1000 * pw) / Math.max(span, 1) >= room) { tStep = s * 1000; break; }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let t = Math.ceil(tMin / tStep) * tStep; t <= tMax; t += tStep) {
      const xx = Math.round(x(t)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath(); ctx.moveTo(xx, top); ctx.lineTo(xx, top + ph); ctx.stroke();
      const label = clock(t, tStep < 60000);
      const half = ctx.measureText(label).width / 2;
      if (xx - half >= left - 20 && xx + half <= w) ctx.fillText(label, xx, top + ph + 4);
    }

    if (n === 0) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const note = 'waiting for the first sample';
      const nw = ctx.measureText(note).width;
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(left + pw / 2 - nw / 2 - 6, top + ph / 2 - 9, nw + 12, 18);
      ctx.fillStyle = COLORS.label;
      ctx.fillText(note, left + pw / 2, top + ph / 2);
      return 0;
    }

    // A run of drawable points ends at a null and where samples are
    // missing (the gateway was down or restarted): gaps, not joins.
    const breaksBefore = (i) => i > 0 && times[i] - times[i - 1] > 2.5 * interval;
    function runs(values) {
      const out = [];
      let cur = null;
      for (let i = 0; i < n; i++) {
        if (values[i] === null || breaksBefore(i)) { if (cur) out.push(cur); cur = null; }
        if (values[i] === null) continue;
        if (!cur) cur = [];
        cur.push(i);
      }
      if (cur) out.push(cur);
      return out;
    }
    // The path through points idx of `values`, left to right (or right to
    // left when `back`), in steps when the spec says so, `shift` pixels
    // off the value.
    function trace(idx, values, back, first, shift) {
      const order = back ? idx.slice().reverse() : idx;
      order.forEach((i, k) => {
        const px = x(times[i]), py = y(values[i]) + shift;
        if (k === 0 && first) {
          ctx.moveTo(px, py);
          return;
        }
        if (spec.step && !back) ctx.lineTo(px, y(values[order[k - 1]]) + shift);
        ctx.lineTo(px, py);
      });
    }

    // Step lines of several series often lie on one another (two clusters
    // with one healthy host each): each is drawn a little apart so that
    // every one stays visible.
    const spread = spec.step && lines.length > 1 ? Math.min(2, 8 / (lines.length - 1)) : 0;
    let points = 0;
    lines.forEach((l, li) => {
      const shift = spread * (li - (lines.length - 1) / 2);
      for (const seg of runs(l.values)) {
        points += seg.length;
        // The area under a lone line, or between a stacked series and the
        // one below it.
        if (spec.stacked || lines.length === 1) {
          ctx.beginPath();
          trace(seg, l.values, false, true, 0);
          if (l.base) {
            trace(seg, l.base, true, false, 0);
          } else {
            ctx.lineTo(x(times[seg[seg.length - 1]]), y(0));
            ctx.lineTo(x(times[seg[0]]), y(0));
          }
          ctx.closePath();
          ctx.globalAlpha = spec.stacked ? 0.75 : 0.12;
          ctx.fillStyle = l.color;
          ctx.fill();
          ctx.globalAlpha = 1;
        }
        // The line itself; a lone point gets a dot to be seen at all.
        ctx.strokeStyle = l.color;
        ctx.fillStyle = l.color;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        if (seg.length === 1) {
          ctx.arc(x(times[seg[0]]), y(l.values[seg[0]]) + shift, 2.5, 0, 2 * Math.PI);
          ctx.fill();
        } else {
          trace(seg, l.values, false, true, shift);
          ctx.stroke();
        }
      }
    });
    return points;
  }

  // --- tables ----------------------------------------------------------

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function renderHosts(clusters) {
    const table = $('hosts'), body = table.tBodies[0];
    body.textContent = '';
    let rows = 0;
    for (const c of clusters) {
      const hosts = Array.isArray(c.hosts) ? c.hosts : [];
      const breaker = typeof c.breaker === 'string' ? c.breaker : null;
      const count = Math.max(1, hosts.length);
      for (let i = 0; i < count; i++) {
        const tr = document.createElement('tr');
        if (i === 0) {
          tr.className = 'first';
          const name = cell(tr, String(c.name) + ' (' + fmt(num(c.healthy)) + '/' + fmt(num(c.total)) + ')');
          name.rowSpan = count;
        }
        const hst = hosts[i];
        if (hst) {
          cell(tr, String(hst.address));
          const state = hst.ejected ? (hst.healthy ? 'ejected' : 'unhealthy, ejected')
                                    : (hst.healthy ? 'healthy' : 'unhealthy');
          cell(tr, state, 'state-' + (hst.healthy ? (hst.ejected ? 'ejected' : 'healthy') : 'unhealthy'));
        } else {
          cell(tr, 'no hosts', 'empty');
          cell(tr, '');
        }
        if (i === 0) {
          const b = cell(tr, breaker ? breaker.replace('_', '-') : '\u2013', breaker ? 'state-' + breaker : '');
          b.rowSpan = count;
        }
        body.appendChild(tr);
        rows++;
      }
    }
    if (!clusters.length) {
      const tr = document.createElement('tr');
      cell(tr, 'no clusters', 'empty').colSpan = 4;
      body.appendChild(tr);
    }
    table.dataset.rows = rows;
  }

  function renderRoutes(routes) {
    const table = $('routes'), body = table.tBodies[0];
    body.textContent = '';
    for (const r of routes) {
      const tr = document.createElement('tr');
      const requests = num(r.requests), errors = num(r.errors);
      cell(tr, String(r.name));
      cell(tr, requests === null ? '\u2013' : grouped.format(requests), 'num');
      cell(tr, errors === null ? '\u2013' : grouped.format(errors), 'num');
      cell(tr, requests ? fmt((100 * (errors || 0)) / requests) : '\u2013', 'num');
      cell(tr, fmt(num(r.p99_ms)), 'num');
      const breaker = typeof r.breaker === 'string' ? r.breaker : null;
      cell(tr, breaker ? breaker.replace('_', '-') : '\u2013', breaker ? 'state-' + breaker : '');
      body.appendChild(tr);
    }
    if (!routes.length) {
      const tr = document.createElement('tr');
      cell(tr, 'no routes', 'empty').colSpan = 6;
      body.appendChild(tr);
    }
    table.dataset.rows = routes.length;
  }

  // --- the whole page --------------------------------------------------

  function render(data) {
    const samples = Array.isArray(data.samples) ? data.samples.filter((s) => s && num(s.t) !== null) : [];
    const clusters = Array.isArray(data.clusters) ? data.clusters : [];
    const routes = Array.isArray(data.routes) ? data.routes : [];
    const interval = num(data.interval_ms) > 0 ? data.interval_ms : DEFAULT_INTERVAL_MS;
    const times = samples.map((s) => s.t);
    const last = samples.length ? samples[samples.length - 1] : null;
    const pick = (f) => samples.map((s) => num(f(s)));
    const byClass = (s, c) => (s.by_class && typeof s.by_class === 'object' ? s.by_class[c] : null);

    $('generation').textContent = num(data.generation) === null ? '\u2013' : String(data.generation);
    $('current-rps').textContent = last ? fmt(num(last.requests)) : '\u2013';
    $('in-flight').textContent = last ? fmt(num(last.in_flight)) : '\u2013';
    $('last-sample').textContent = last ? clock(last.t, true) : '\u2013';

    // Cluster names: the current ones first, in their order, then any that
    // only older samples mention (removed by a reload).
    const names = clusters.map((c) => String(c.name));
    for (const s of samples)
      if (s.healthy_hosts && typeof s.healthy_hosts === 'object')
        for (const k of Object.keys(s.healthy_hosts)) if (names.indexOf(k) < 0) names.push(k);
    const totalHosts = clusters.reduce((m, c) => Math.max(m, num(c.total) || 0), 0);

    const charts = [
      { id: 'requests', series: [{ label: 'requests/s', color: COLORS.requests, values: pick((s) => s.requests) }],
        latest: last ? fmt(num(last.requests)) + ' req/s' : '\u2013' },
      { id: 'latency', series: [
          { label: 'p50', color: COLORS.p50, values: pick((s) => s.p50_ms) },
          { label: 'p99', color: COLORS.p99, values: pick((s) => s.p99_ms) }],
        latest: !last ? '\u2013' : num(last.p50_ms) === null && num(last.p99_ms) === null ? 'idle'
          : 'p50 ' + fmt(num(last.p50_ms)) + ' \u00b7 p99 ' + fmt(num(last.p99_ms)) + ' ms' },
      { id: 'status', stacked: true,
        series: CLASSES.map((c) => ({ label: c, color: COLORS[c], values: pick((s) => byClass(s, c)) })),
        latest: !last ? '\u2013'
          : CLASSES.slice(1).map((c) => c + ' ' + fmt(num(byClass(last, c)))).join(' \u00b7 ') },
      { id: 'health', step: true, integer: true, floor: totalHosts,
        series: names.map((name, i) => ({
          label: name, color: CLUSTER_COLORS[i % CLUSTER_COLORS.length],
          values: pick((s) => (s.healthy_hosts && typeof s.healthy_hosts === 'object' ? s.healthy_hosts[name] : null)) })),
        latest: clusters.length ? clusters.map((c) => String(c.name) + ' ' + fmt(num(c.healthy)) + '/' + fmt(num(c.total))).join(' \u00b7 ') : '\u2013' },
      { id: 'cache', fixedMax: 100,
        series: [{ label: 'hit ratio', color: COLORS.cache, values: pick((s) => (num(s.cache_hit_ratio) === null ? null : 100 * s.cache_hit_ratio)) }],
        latest: !last ? '\u2013' : num(last.cache_hit_ratio) === null ? 'no lookups' : fmt(100 * last.cache_hit_ratio) + ' %' },
      { id: 'ratelimit', series: [{ label: 'rejected/s', color: COLORS.limited, values: pick((s) => s.rate_limited) }],
        latest: last ? fmt(num(last.rate_limited)) + ' /s' : '\u2013' },
    ];
    for (const c of charts) {
      const panel = $('chart-' + c.id);
      c.times = times;
      c.interval = interval;
      panel.dataset.points = drawChart(panel, c);
      $('latest-' + c.id).textContent = c.latest;
    }
    renderHosts(clusters);
    renderRoutes(routes);

    document.body.dataset.samples = samples.length;
    document.body.dataset.rendered = 'true';
    return interval;
  }

  function setStatus(kind, text) {
    const el = $('status');
    el.className = 'status ' + kind;
    el.textContent = text;
    document.body.dataset.status = kind;
  }

  // One poll, then the next one an interval after it ends: a slow gateway
  // is never asked twice at once. A failed poll says so and keeps polling,
  // so the page recovers by itself; the charts keep the last good data.
  async function poll() {
    let delay = lastData && num(lastData.interval_ms) > 0 ? lastData.interval_ms : DEFAULT_INTERVAL_MS;
    delay = Math.min(Math.max(delay, 250), 60000);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(5000, 3 * delay));
    let data = null;
    try {
      const res = await fetch(DATA_URL, { cache: 'no-store', signal: abort.signal });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      data = await res.json();
      if (!data || typeof data !== 'object') throw new Error('not a JSON object');
    } catch (e) {
      const why = e && e.name === 'AbortError' ? 'timed out' : e && e.message ? e.message : String(e);
      setStatus('err', 'no data from the gateway (' + why + '), retrying');
      data = null;
    } finally {
      clearTimeout(timer);
    }
    if (data) {
      try {
        lastData = data;
        const interval = render(data);
        setStatus('ok', 'live, every ' + fmt(interval / 1000) + ' s');
      } catch (e) {
        // A bug or an unexpected format: shown, and logged for devtools.
        setStatus('err', 'cannot draw the data: ' + (e && e.message ? e.message : String(e)));
        console.error(e);
      }
    }
    setTimeout(poll, delay);
  }

  // The canvases follow the window's width.
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (!lastData) return;
      try {
        render(lastData);
      } catch (e) {
        setStatus('err', 'cannot draw the data: ' + (e && e.message ? e.message : String(e)));
        console.error(e);
      }
    }, 100);
  });

  poll();
})();
</script>
</body>
</html>
)dashboard_html";

}  // namespace

std::string_view dashboard_page() noexcept {
  return k_page;
}

std::string_view dashboard_content_security_policy() noexcept {
  return "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
         "connect-src 'self'; img-src data:";
}

}  // namespace trellis::gateway
