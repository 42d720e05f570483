/* Draws the independence report (JSON from GET /admin/report) with Chart.js.
 * Shared by the dashboard and by the self-contained HTML report (`emancipate report
 * --format html`). Every value is written with textContent: names from the ledger (routes,
 * vendors) can never inject markup. */
(function () {
  "use strict";

  const COLORS = ["#2563eb", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777",
                  "#65a30d", "#475569", "#ea580c", "#0d9488"];
  const OWNER_COLORS = { "in-house": "#15803d", "external": "#dc2626", "unknown": "#94a3b8" };
  const CLASS_COLORS = { secret: "#b91c1c", personal: "#d97706", confidential: "#7c3aed",
                         code: "#0891b2", domain: "#db2777" };
  const ACTION_COLORS = { redacted: "#d97706", kept_in_house_policy: "#15803d", blocked: "#b91c1c" };

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
  const num = (x) => (x === null || x === undefined ? "–" :
    Number(x).toLocaleString("en-US", { maximumFractionDigits: Math.abs(x) < 10 ? 2 : 0 }));
  const money = (x, cur) => (x === null || x === undefined ? "–" :
    Number(x).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) +
    (cur ? " " + cur : ""));

  /* One colour per name for the whole page (first come, first served), so a vendor has the
   * same colour in every chart; in-house is always green. */
  const assigned = new Map();
  function colorFor(name) {
    if (name === "in-house") return OWNER_COLORS["in-house"];
    if (!assigned.has(name)) assigned.set(name, COLORS[assigned.size % COLORS.length]);
    return assigned.get(name);
  }
  function seedColors(rep) { (rep.by_vendor || []).forEach((v) => colorFor(v.vendor)); }

  /* A table from rows; columns: [key, label, format?, numeric?]. */
  function table(columns, rows, opts) {
    opts = opts || {};
    const head = h("tr", {}, columns.map((c) => h("th", { class: c[3] ? "num" : null, text: c[1] })));
    const body = rows.map((r) => {
      const tr = h("tr", { class: opts.onclick ? "clickable" : null },
        columns.map((c) => {
          const v = r[c[0]];
          const out = c[2] ? c[2](v, r) : (v === null || v === undefined ? "–" : v);
          return h("td", { class: (c[3] ? "num" : "") + (c[4] ? " wrap" : "") || null },
                   out instanceof Node ? out : String(out));
        }));
      if (opts.onclick) tr.addEventListener("click", () => opts.onclick(r));
      return tr;
    });
    return h("div", { class: "scroll" },
             h("table", { class: opts.class || null, "data-table": opts.name || null },
               h("thead", {}, head), h("tbody", {}, body)));
  }

  const charts = new Map(); // canvas id -> Chart
  function chart(id, config, small) {
    const canvas = h("canvas", { id: id, role: "img", "aria-label": config.title || id });
    const box = h("div", { class: small ? "chart small" : "chart" }, canvas);
    if (charts.has(id)) { charts.get(id).destroy(); charts.delete(id); }
    if (typeof Chart === "undefined") return h("p", { class: "note", text: "charts unavailable" });
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false,
                                     animation: false }, config.options || {});
    // Drawn once the canvas is in the document (Chart.js measures its parent).
    queueMicrotask(() => { charts.set(id, new Chart(canvas, config)); });
    return box;
  }

  function kpi(label, value, sub, name) {
    return h("div", { class: "kpi", "data-kpi": name || null },
             h("div", { class: "v", text: value }), h("div", { class: "l", text: label }),
             sub ? h("div", { class: "s", text: sub }) : null);
  }

  function panel(title, ...children) {
    return h("div", { class: "panel" }, h("h3", { text: title }), ...children);
  }

  function stacked100(days, key, metric) {
    const names = new Set();
    days.forEach((d) => Object.keys(d[key] || {}).forEach((n) => names.add(n)));
    const list = [...names].sort();
    return list.map((n, i) => ({
      label: n,
      data: days.map((d) => {
        const cells = d[key] || {};
        const total = Object.values(cells).reduce((s, c) => s + (c[metric] || 0), 0);
        return total ? (100 * ((cells[n] || {})[metric] || 0)) / total : 0;
      }),
      backgroundColor: key === "ownership" ? (OWNER_COLORS[n] || colorFor(n, i)) : colorFor(n, i),
      borderWidth: 0, stack: "s",
    }));
  }

  function shareChart(id, days, key, title) {
    let metric = "requests";
    const labels = days.map((d) => d.day);
    const cfg = {
      type: "bar", title: title,
      data: { labels: labels, datasets: stacked100(days, key, metric) },
      options: {
        scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } },
                  y: { stacked: true, max: 100, ticks: { callback: (v) => v + "%" } } },
        plugins: { tooltip: { callbacks: { label: (c) => c.dataset.label + ": " +
                                           c.parsed.y.toFixed(1) + "%" } } },
      },
    };
    const box = chart(id, cfg);
    const buttons = ["requests", "tokens", "cost"].map((m) => h("button", {
      type: "button", class: m === metric ? "on" : null, text: m === "cost" ? "spend" : m,
      dataset: { metric: m },
      onclick: (ev) => {
        metric = m;
        for (const b of ev.target.parentNode.children) b.classList.toggle("on", b === ev.target);
        const c = charts.get(id);
        if (c) { c.data.datasets = stacked100(days, key, metric); c.update(); }
      },
    }));
    return panel(title, h("div", { class: "toggle" }, buttons), box);
  }

  function renderIndependence(el, rep) {
    const t = rep.totals, c = rep.concentration, r = rep.router, cur = rep.currency;
    seedColors(rep);
    el.replaceChildren();
    const days = rep.trend.filter((d) => d.requests > 0);
    el.append(h("div", { class: "kpis" },
      kpi("in-house share of requests", pct(t.inhouse_share_requests),
          "tokens " + pct(t.inhouse_share_tokens) + " · spend " + pct(t.inhouse_share_cost),
          "inhouse-share"),
      kpi("vendor concentration (HHI)", num(c.hhi), c.band + " · " + c.hhi_direction +
          " (" + (c.hhi_slope_30d >= 0 ? "+" : "") + num(c.hhi_slope_30d) + " / 30 d)", "hhi"),
      kpi("kept in-house by the router", num(r.kept_in_house),
          pct(r.inhouse_share) + " of routed · est. " + num(r.expected_worse_answers) +
          " worse answers", "kept-in-house"),
      kpi("leaks prevented", num(rep.protection.leaks_prevented), "redacted " +
          num(rep.protection.redacted) + " · kept in-house " + num(rep.protection.kept_in_house) +
          " · blocked " + num(rep.protection.blocked), "leaks"),
      kpi("failovers survived", num(rep.failovers.survived), "of " +
          num(rep.failovers.multi_attempt) + " multi-attempt requests", "failovers"),
      cacheKpi(rep),
      kpi("requests · spend", num(t.requests), money(t.cost, cur) + " · " + num(t.tokens) +
          " tokens", "requests"),
    ));
    if (!t.requests) {
      el.append(h("p", { class: "note", text: "No requests recorded in this period." }));
      return;
    }
    el.append(h("div", { class: "grid" },
      shareChart("chart-ownership", days, "ownership", "Share by ownership per day"),
      shareChart("chart-vendors", days, "vendors", "Share by vendor per day"),
    ));
    const vendorCols = [["vendor", "vendor"], ["ownership", "ownership"],
      ["requests", "requests", num, true], ["share_requests", "req. share", pct, true],
      ["tokens", "tokens", num, true], ["share_tokens", "token share", pct, true],
      ["cost", "spend", (v) => money(v), true], ["share_cost", "spend share", pct, true],
      ["failovers_survived", "failovers survived", num, true]];
    el.append(h("div", { class: "grid" },
      panel("Requests by vendor", chart("chart-vendor-doughnut", {
        type: "doughnut", title: "Requests by vendor",
        data: { labels: rep.by_vendor.map((v) => v.vendor),
                datasets: [{ data: rep.by_vendor.map((v) => v.requests),
                             backgroundColor: rep.by_vendor.map((v, i) => colorFor(v.vendor, i)) }] },
        options: { plugins: { legend: { position: "right" } } },
      }, true)),
      panel("Vendor concentration (HHI) per day", chart("chart-hhi", {
        type: "line", title: "HHI per day",
        data: { labels: days.map((d) => d.day), datasets: [
          { label: "HHI", data: days.map((d) => d.hhi), borderColor: "#2563eb", pointRadius: 0,
            borderWidth: 2 },
          { label: "highly concentrated above 1,800", data: days.map(() => 1800),
            borderColor: "#b91c1c", borderDash: [6, 4], pointRadius: 0, borderWidth: 1 },
          { label: "unconcentrated below 1,000", data: days.map(() => 1000),
            borderColor: "#15803d", borderDash: [6, 4], pointRadius: 0, borderWidth: 1 },
        ] },
        options: { scales: { y: { min: 0, max: 10000 }, x: { ticks: { maxTicksLimit: 12 } } } },
      }, true)),
    ));
    el.append(panel("By vendor", table(vendorCols, rep.by_vendor, { name: "by-vendor" })));
    el.append(panel("By ownership", table(vendorCols.slice(1), rep.by_ownership,
                                          { name: "by-ownership" })));
    const cachePanel = renderCachePanel(rep);
    if (cachePanel) el.append(cachePanel);
    el.append(h("h2", { text: "Independence router" }));
    const routed = days.filter((d) => d.routed > 0);
    const routerPanel = panel("Kept in-house by the router per day",
      routed.length ? chart("chart-router", {
        type: "bar", title: "Kept in-house by the router",
        data: { labels: routed.map((d) => d.day), datasets: [
          { label: "kept in-house", data: routed.map((d) => d.kept_in_house),
            backgroundColor: OWNER_COLORS["in-house"], stack: "r" },
          { label: "sent external", data: routed.map((d) => d.routed - d.kept_in_house),
            backgroundColor: OWNER_COLORS.external, stack: "r" }] },
        options: { scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } },
                             y: { stacked: true } } },
      }, true) : h("p", { class: "note", text: "No route uses the independence strategy in this period." }),
      r.routes.length ? table([["route", "route"], ["kept_in_house", "kept in-house", num, true],
        ["sent_external", "sent external", num, true], ["inhouse_share", "in-house share", pct, true],
        ["expected_worse_answers", "est. worse answers", num, true],
        ["expected_worse_share", "est. quality cost", pct, true]], r.routes, { name: "router" }) : null);
    el.append(h("div", { class: "grid" }, routerPanel, renderWhatIfPanel(rep)));
    el.append(renderShadowPanel(rep));
  }

  // Vendor calls avoided by the response cache: shown once a route has a cache.
  function cacheKpi(rep) {
    const k = rep.cache;
    if (!k || !k.lookups) return null;
    return kpi("vendor calls avoided by cache", num(k.vendor_calls_avoided),
               "hit rate " + pct(k.hit_rate) + " · " + num(k.tokens_avoided) + " tokens · " +
               money(k.cost_avoided, rep.currency) + " avoided", "cache");
  }

  function renderCachePanel(rep) {
    const k = rep.cache;
    if (!k || !k.lookups) return null;
    return panel("Response cache",
      h("p", { class: "note", text: num(k.hits) + " answers from the cache (" +
               num(k.inhouse_hits) + " of them in-house answers, " + num(k.semantic_hits) +
               " semantic): " + num(k.vendor_calls_avoided) + " vendor calls avoided, " +
               pct(k.avoided_share) + " of the external calls; not counted as served in " +
               "the shares above." }),
      table([["route", "route"], ["lookups", "requests", num, true], ["hits", "hits", num, true],
             ["misses", "misses", num, true], ["bypasses", "bypasses", num, true],
             ["hit_rate", "hit rate", pct, true],
             ["vendor_calls_avoided", "vendor calls avoided", num, true]],
            k.by_route, { name: "cache-routes" }),
      k.by_vendor.length ? table([["vendor", "vendor"],
             ["calls_avoided", "calls avoided", num, true], ["tokens", "tokens", num, true],
             ["cost", "cost avoided", (v) => money(v, rep.currency), true]],
            k.by_vendor, { name: "cache-vendors" }) : null);
  }

  function renderWhatIfPanel(rep) {
    const items = rep.what_if || [];
    if (!items.length) {
      return panel("What-if: other router thresholds",
        h("p", { class: "note", text: "No independence route configured and no router scores " +
                 "recorded: nothing to project." }));
    }
    const parts = [];
    items.forEach((w, i) => {
      const ds = [];
      if (w.curve_heldout) {
        ds.push({ label: "held-out calibration", data: w.curve_heldout.map((p) =>
          ({ x: 100 * p.inhouse_share, y: 100 * p.quality })), borderColor: "#2563eb",
          showLine: true, pointRadius: 0, borderWidth: 2 });
      }
      const live = w.points.filter((p) => p.inhouse_share_live !== undefined &&
                                          p.quality_live_est !== undefined);
      if (live.length) {
        ds.push({ label: "on this period's traffic (est.)", data: live.map((p) =>
          ({ x: 100 * p.inhouse_share_live, y: 100 * p.quality_live_est })),
          borderColor: "#d97706", backgroundColor: "#d97706", showLine: true, pointRadius: 2 });
      }
      if (w.threshold !== null && w.threshold !== undefined) {
        const cur = w.points.find((p) => Math.abs(p.threshold - w.threshold) < 1e-9);
        if (cur && cur.inhouse_share_heldout !== undefined) {
          ds.push({ label: "current threshold " + w.threshold.toFixed(3), data: [
            { x: 100 * cur.inhouse_share_heldout, y: 100 * cur.quality_heldout }],
            borderColor: "#b91c1c", backgroundColor: "#b91c1c", pointRadius: 6, pointStyle: "rectRot" });
        }
      }
      parts.push(h("h3", { text: "route " + w.route + (w.error ? " — " + w.error : "") }));
      if (ds.length) {
        parts.push(chart("chart-whatif-" + i, {
          type: "scatter", title: "What-if " + w.route, data: { datasets: ds },
          options: { scales: { x: { title: { display: true, text: "in-house share (%)" }, min: 0, max: 100 },
                               y: { title: { display: true, text: "quality (%)" } } } },
        }, true));
      }
      const cols = [["threshold", "threshold", (v) => v.toFixed(2), true]];
      const has = (k) => w.points.some((p) => p[k] !== undefined);
      if (has("inhouse_share_heldout")) cols.push(["inhouse_share_heldout", "in-house (held-out)", pct, true],
        ["quality_heldout", "quality (held-out)", pct, true], ["gap_recovered_heldout", "gap recovered", pct, true]);
      if (has("inhouse_share_live")) cols.push(["inhouse_share_live", "in-house (live)", pct, true]);
      if (has("quality_live_est")) cols.push(["quality_live_est", "quality (live est.)", pct, true]);
      const pts = w.points.filter((p, j) => j % 2 === 0 || p.threshold === w.threshold);
      parts.push(h("details", {}, h("summary", { text: "points" }),
                   table(cols, pts, { name: "what-if" })));
    });
    return panel("What-if: other router thresholds", ...parts);
  }

  function renderShadowPanel(rep) {
    const s = rep.shadow;
    if (!s.available || !s.days.length) {
      return panel("Shadow readiness", h("p", { class: "note", "data-shadow": "none",
        text: s.note || "no shadow data" }));
    }
    const byRoute = {};
    s.days.forEach((d) => { (byRoute[d.route] = byRoute[d.route] || []).push(d); });
    const labels = [...new Set(s.days.map((d) => d.day))].sort();
    const ds = Object.entries(byRoute).map(([route, rows], i) => ({
      label: route, borderColor: colorFor(route, i), pointRadius: 2,
      data: labels.map((day) => { const r = rows.find((x) => x.day === day);
                                  return r && r.readiness !== null ? 100 * r.readiness : null; }),
    }));
    return panel("Shadow readiness (in-house answer judged as good)",
      chart("chart-shadow", { type: "line", title: "Shadow readiness",
        data: { labels: labels, datasets: ds },
        options: { spanGaps: true, scales: { y: { min: 0, max: 100, ticks: { callback: (v) => v + "%" } } } },
      }, true),
      table([["route", "route"], ["verdicts", "verdicts", num, true], ["errors", "errors", num, true],
             ["inhouse_ok", "in-house ok", num, true], ["readiness", "readiness", pct, true],
             ["readiness_ci95", "95% interval", (v) => pct(v[0]) + " – " + pct(v[1]), true]],
            s.routes, { name: "shadow" }),
      ...shadowSpend(s.spend, rep.currency));
  }

  // What shadow answers and judge calls spent: real vendor spend, outside the traffic shares.
  function shadowSpend(spend, currency) {
    if (!spend || !spend.by_vendor.length) return [];
    const cost = (v) => v.toFixed(4) + " " + currency;
    return [h("p", { class: "note", "data-shadow-spend": String(spend.cost),
                     text: "Shadow evaluation spent " + cost(spend.cost) + " (" + num(spend.tokens) +
                           " tokens), not counted in the shares above." }),
            table([["vendor", "vendor"], ["shadow_calls", "shadow answers", num, true],
                   ["judge_calls", "judge calls", num, true], ["tokens", "tokens", num, true],
                   ["cost", "cost", cost, true]], spend.by_vendor, { name: "shadow-spend" })];
  }

  function renderProtection(el, rep, policy) {
    const p = rep.protection;
    el.replaceChildren();
    const days = rep.trend.filter((d) => d.requests > 0);
    el.append(h("div", { class: "kpis" },
      kpi("leaks prevented", num(p.leaks_prevented), "requests protected", "leaks"),
      kpi("redacted", num(p.redacted), "values replaced before leaving", "redacted"),
      kpi("kept in-house", num(p.kept_in_house), "external targets excluded", "kept"),
      kpi("blocked", num(p.blocked), "no eligible target", "blocked")));
    const classes = [...new Set(days.flatMap((d) => Object.keys(d.findings_by_class || {})))].sort();
    el.append(h("div", { class: "grid" },
      panel("Findings per day by class", chart("chart-findings", {
        type: "bar", title: "Findings per day",
        data: { labels: days.map((d) => d.day), datasets: classes.map((c, i) => ({
          label: c, data: days.map((d) => (d.findings_by_class || {})[c] || 0),
          backgroundColor: CLASS_COLORS[c] || colorFor(c, i), stack: "f" })) },
        options: { scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true } } },
      }, true)),
      panel("Actions per day", chart("chart-actions", {
        type: "bar", title: "Policy actions per day",
        data: { labels: days.map((d) => d.day), datasets: [
          ["redacted", "redacted"], ["kept_in_house_policy", "kept in-house"], ["blocked", "blocked"],
        ].map(([k, label]) => ({ label: label, data: days.map((d) => d[k] || 0),
                                  backgroundColor: ACTION_COLORS[k], stack: "a" })) },
        options: { scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true } } },
      }, true))));
    const acts = [["redacted", "redacted", num, true], ["kept_in_house", "kept in-house", num, true],
                  ["blocked", "blocked", num, true]];
    el.append(h("div", { class: "grid" },
      panel("By class", table([["cls", "class"], ["findings", "findings", num, true],
                               ["requests", "requests", num, true], ...acts], p.by_class,
                              { name: "by-class" })),
      panel("By domain", p.by_domain.length ? table([["domain", "domain"],
        ["findings", "findings", num, true], ["requests", "requests", num, true]], p.by_domain,
        { name: "by-domain" }) : h("p", { class: "note", text: "no domain findings" })),
      panel("By vendor", table([["vendor", "vendor"],
        ["findings_served", "findings in requests it served", num, true], ...acts], p.by_vendor,
        { name: "protection-by-vendor" })),
      panel("By rule", table([["rule", "rule"], ["cls", "class"], ["action", "action"],
                              ["decisions", "decisions", num, true]], p.by_rule, { name: "by-rule" }))));
    if (policy) {
      el.append(h("h2", { text: "Policy in force" }));
      el.append(panel("Rules (first match wins)", table([["name", "name"], ["origin", "origin"],
        ["class", "class", (v) => (v || []).join(", ")],
        ["detector", "detector", (v) => (v || ["*"]).join(", ")],
        ["domain", "domain", (v) => (v || ["*"]).join(", ")],
        ["relationship", "relationship"], ["ownership", "ownership"],
        ["vendor", "vendor", (v) => (v || ["*"]).join(", ")],
        ["team", "team", (v) => (v || ["*"]).join(", ")],
        ["action", "action", (v) => h("span", { class: "badge " + ({ block: "bad", redact: "warn",
          "in-house-only": "good" }[v] || ""), text: v })]], policy.rules, { name: "rules" })));
      const rel = Object.entries(policy.vendors).map(([v, rels]) => ({ vendor: v,
        relationships: Object.entries(rels).map(([d, r]) => d + ": " + r).join(", ") || "–" }));
      el.append(h("div", { class: "grid" },
        panel("Vendor relationships (default: " + policy.default_relationship + ")",
          rel.length ? table([["vendor", "vendor"], ["relationships", "relationships", null, false, true]], rel)
                     : h("p", { class: "note", text: "none declared" })),
        panel("Guard", h("dl", { class: "kv" },
          h("dt", { text: "enabled" }), h("dd", { text: String(policy.guard.enabled) }),
          h("dt", { text: "classes" }), h("dd", { text: policy.guard.classes.join(", ") }),
          h("dt", { text: "domains" }), h("dd", { text: policy.guard.domains.join(", ") || "–" }),
          h("dt", { text: "confidential terms" }),
          h("dd", { text: policy.guard.confidential_terms + " configured (values never shown)" })))));
    }
  }

  function renderFailovers(el, rep) {
    const f = rep.failovers;
    const days = rep.trend.filter((d) => d.requests > 0);
    el.append(h("div", { class: "grid" },
      panel("Failovers survived per day", chart("chart-failovers", {
        type: "bar", title: "Failovers survived",
        data: { labels: days.map((d) => d.day), datasets: [{ label: "failovers survived",
          data: days.map((d) => d.failovers_survived), backgroundColor: "#0891b2" }] },
        options: { scales: { x: { ticks: { maxTicksLimit: 12 } } } },
      }, true)),
      panel("Failed attempts the gateway recovered from (" + num(f.survived) + " requests)",
        f.failed_attempts.length ? table([["target", "target"], ["outcome", "outcome"],
          ["attempts", "attempts", num, true], ["requests", "requests", num, true]],
          f.failed_attempts, { name: "failed-attempts" }) : h("p", { class: "note", text: "none" }))));
  }

  function renderAll(el, rep) {
    el.replaceChildren();
    const since = rep.since ? rep.since.slice(0, 16).replace("T", " ") : "the first request";
    el.append(h("div", { class: "report-head" }, h("h1", { text: "Independence report" }),
      h("span", { class: "note", text: "since " + since + " UTC · generated " +
        rep.generated_at.slice(0, 16).replace("T", " ") + " UTC" })));
    const ind = h("section", {}), prot = h("section", {}), fail = h("section", {});
    el.append(ind, h("h2", { text: "Protection" }), prot, h("h2", { text: "Failovers" }), fail);
    renderIndependence(ind, rep);
    renderProtection(prot, rep, null);
    renderFailovers(fail, rep);
  }

  window.EmancipateReport = { h, table, chart, charts, kpi, panel, pct, num, money, colorFor,
                              renderIndependence, renderProtection, renderFailovers, renderAll };
})();
