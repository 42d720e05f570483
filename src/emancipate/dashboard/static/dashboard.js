/* emancipate dashboard: log-in, tabs, and the calls to the admin JSON API.
 * The admin key lives in sessionStorage (this tab only) and goes out as a Bearer header. */
(function () {
  "use strict";
  const R = window.EmancipateReport;
  const { h, table, chart, kpi, panel, pct, num, money } = R;
  const KEY = "emancipate.adminKey";
  const state = { key: sessionStorage.getItem(KEY), reports: {}, policy: null };
  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Authorization: "Bearer " + (opts.key || state.key) },
                                  opts.headers || {});
    const resp = await fetch(path, { method: opts.method || "GET", headers: headers,
                                     body: opts.body });
    if (!resp.ok) {
      let message = "HTTP " + resp.status;
      try { message = (await resp.json()).error.message || message; } catch (e) { /* not JSON */ }
      if (resp.status === 401 && !opts.key && path.startsWith("/admin/")) logout(message);
      throw new ApiError(resp.status, message);
    }
    return opts.raw ? resp : resp.json();
  }

  // --- log-in -------------------------------------------------------------------------------

  function showLogin(message) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("admin-key").focus();
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    state.key = null;
    state.reports = {};
    state.policy = null;
    showLogin(message || "");
  }

  async function login(key) {
    let me;
    try {
      me = await api("/admin/whoami", { key: key });
    } catch (e) {
      showLogin(e.status === 401 ? "Invalid admin key." : e.message);
      return false;
    }
    // Who is logged in, and with which role: the server checks the role on every call.
    $("who").textContent = me.name + " · " + me.role;
    $("who").dataset.role = me.role;
    state.key = key;
    sessionStorage.setItem(KEY, key);
    $("login").hidden = true;
    $("app").hidden = false;
    route();
    return true;
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    login($("admin-key").value.trim());
  });
  $("logout").addEventListener("click", () => logout("Logged out."));
  $("refresh").addEventListener("click", () => { state.reports = {}; route(); });
  $("period").addEventListener("change", () => route());

  // --- tabs ---------------------------------------------------------------------------------

  const loaders = { independence, protection, health, usage, requests, playground };

  function route() {
    if (!state.key) return showLogin();
    const [tab, arg] = (location.hash.slice(1) || "independence").split("/");
    const name = loaders[tab] ? tab : "independence";
    for (const a of document.querySelectorAll("#tabs a")) {
      a.classList.toggle("active", a.dataset.tab === name);
    }
    for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== "tab-" + name;
    const el = $("tab-" + name);
    el.dataset.state = "loading";
    Promise.resolve(loaders[name](el, arg ? decodeURIComponent(arg) : null))
      .then(() => { el.dataset.state = "ready"; })
      .catch((e) => {
        if (!state.key) return;
        el.dataset.state = "error";
        el.prepend(h("p", { class: "error", role: "alert", text: e.message }));
      });
  }
  window.addEventListener("hashchange", route);

  function period() { return $("period").value; }

  async function report() {
    const p = period();
    if (!state.reports[p]) {
      state.reports[p] = await api("/admin/report?format=json&since=" + encodeURIComponent(p));
    }
    return state.reports[p];
  }

  function loadingNote(el) {
    if (!el.dataset.rendered) el.replaceChildren(h("p", { class: "note", text: "Loading…" }));
  }

  async function independence(el) {
    loadingNote(el);
    R.renderIndependence(el, await report());
    el.prepend(h("p", { class: "actions" }, h("button", { type: "button", id: "download-report",
      text: "Download the HTML report", onclick: downloadReport })));
  }

  /* The self-contained HTML report (charts inline), saved as a file: it needs the key, so it
   * is fetched with the header rather than linked. */
  async function downloadReport() {
    const resp = await api("/admin/report?format=html&since=" + encodeURIComponent(period()),
                           { raw: true });
    const url = URL.createObjectURL(await resp.blob());
    const a = h("a", { href: url, download: "independence-report-" + period() + ".html" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function protection(el) {
    loadingNote(el);
    const [rep, pol] = await Promise.all([report(),
      state.policy ? state.policy : api("/admin/policy")]);
    state.policy = pol;
    R.renderProtection(el, rep, pol);
  }

  /* "&since=30d", or nothing for "all". */
  function sinceParam(p) { return /^\d+d$/.test(p) ? "&since=" + p : ""; }

  async function health(el) {
    loadingNote(el);
    const p = period();
    const [targets, usage, rep] = await Promise.all([
      api("/admin/targets"),
      api("/admin/usage?by=target" + sinceParam(p)),
      report()]);
    el.replaceChildren();
    const stateBadge = (s) => h("span", { class: "badge " + ({ closed: "good", "half-open": "warn",
                                                               open: "bad" }[s] || ""), text: s });
    const ms = (v) => (v === null || v === undefined ? "–" : num(v) + " ms");
    el.append(panel("Targets now (since this gateway started)", table([
      ["target", "target"], ["state", "breaker", stateBadge], ["inflight", "in flight", num, true],
      ["latency_ms_p50", "p50", ms, true], ["latency_ms_p99", "p99", ms, true],
      ["successes", "successes", num, true], ["errors", "errors", num, true],
      ["error_rate", "error rate", pct, true]], targets.targets, { name: "targets" })));
    const rows = usage.data.map((r) => Object.assign({}, r, {
      error_rate: r.requests ? r.errors / r.requests : 0 }));
    el.append(panel("Targets in the ledger (" + p + ")", table([
      ["target", "target", (v) => v || "(no target served)"], ["requests", "requests", num, true],
      ["errors", "errors", num, true], ["error_rate", "error rate", pct, true],
      ["failovers", "multi-attempt", num, true], ["avg_latency_ms", "avg latency", ms, true],
      ["cost", "spend", (v) => money(v, usage.currency), true]], rows, { name: "ledger-targets" })));
    R.renderFailovers(el, rep);
  }

  function bar(used, budget) {
    if (!budget) return "–";
    const share = used / budget;
    return h("div", { class: "bar", title: pct(share) },
             (() => { const d = h("div", { class: share > 1 ? "over" : null });
                      d.style.width = Math.min(100, 100 * share).toFixed(1) + "%"; return d; })());
  }

  async function usage(el) {
    loadingNote(el);
    const p = period();
    const now = new Date();
    const today = now.toISOString().slice(0, 10);
    const month = today.slice(0, 8) + "01";
    const [keys, byKey, byTeam, todayUse, monthUse, teams] = await Promise.all([
      api("/admin/keys"),
      api("/admin/usage?by=key" + sinceParam(p)),
      api("/admin/usage?by=team" + sinceParam(p)),
      api("/admin/usage?by=key&since=" + today),
      api("/admin/usage?by=key&since=" + month),
      api("/admin/teams")]);
    const cur = byKey.currency;
    const spend = (data) => Object.fromEntries(data.map((r) => [r.key, r.cost]));
    const d = spend(todayUse.data), m = spend(monthUse.data);
    el.replaceChildren();
    const rows = keys.data.map((k) => Object.assign({}, k, {
      spent_day: d[k.id] || 0, spent_month: m[k.id] || 0 }));
    el.append(panel("Keys and budgets (UTC day and month)", table([
      ["name", "name"], ["id", "id"], ["team", "team"], ["status", "status"],
      ["spent_day", "spent today", (v) => money(v, cur), true],
      ["budget_day", "day budget", (v) => (v ? money(v, cur) : "–"), true],
      ["budget_day", "used", (v, r) => bar(r.spent_day, v)],
      ["spent_month", "spent this month", (v) => money(v, cur), true],
      ["budget_month", "month budget", (v) => (v ? money(v, cur) : "–"), true],
      ["budget_month", "used", (v, r) => bar(r.spent_month, v)],
      ["rpm", "rpm", num, true], ["tpm", "tpm", num, true],
      ["expires_at", "expires (UTC)", (v) => (v ? v.slice(0, 16).replace("T", " ") : "never")]],
      rows, { name: "keys" })));
    if (teams.data.length) {
      el.append(panel("Teams: limits their keys share (a key's own limits further restrict)",
        table([["name", "team"], ["models", "models", (v) => (v ? v.join(", ") : "every model")],
          ["budget_day", "day budget", (v) => (v ? money(v, cur) : "–"), true],
          ["budget_month", "month budget", (v) => (v ? money(v, cur) : "–"), true],
          ["rpm", "rpm", num, true], ["tpm", "tpm", num, true]],
          teams.data, { name: "team-limits" })));
    }
    const usageCols = (first, label) => [[first, label, (v) => v || "–"],
      ["requests", "requests", num, true], ["errors", "errors", num, true],
      ["prompt_tokens", "prompt tokens", num, true], ["completion_tokens", "completion tokens", num, true],
      ["cost", "spend", (v) => money(v, cur), true], ["share_cost", "spend share", pct, true]];
    const top = byTeam.data.slice(0, 12);
    el.append(h("div", { class: "grid" },
      panel("Spend by team (" + p + ")", chart("chart-teams", { type: "bar", title: "Spend by team",
        data: { labels: top.map((r) => r.team || "(no team)"), datasets: [{ label: "spend " + cur,
          data: top.map((r) => r.cost), backgroundColor: "#2563eb" }] },
        options: { indexAxis: "y", plugins: { legend: { display: false } } } }, true)),
      panel("By team (" + p + ")", table(usageCols("team", "team"), byTeam.data, { name: "teams" }))));
    el.append(panel("By key (" + p + ")", table([["key", "key id"], ["name", "name"]]
      .concat(usageCols("key", "key").slice(1)), byKey.data, { name: "usage-keys" })));
  }

  // --- request explorer ---------------------------------------------------------------------

  function renderPath(box, path) {
    box.replaceChildren();
    const fields = ["id", "created_at", "route", "key_id", "team", "target", "vendor", "ownership",
                    "status", "error_code", "prompt_tokens", "completion_tokens",
                    "cost", "latency_ms", "router_score", "stream", "endpoint"];
    box.append(panel("Request " + path.id, h("dl", { class: "kv", "data-request": path.id },
      fields.flatMap((f) => [h("dt", { text: f }),
        h("dd", { text: path[f] === null || path[f] === undefined ? "–" : String(path[f]) })]))));
    box.append(panel("Attempts (in order)", path.attempts.length ? table([["n", "#", null, true],
      ["target", "target"], ["vendor", "vendor"], ["ownership", "ownership"], ["outcome", "outcome"],
      ["status", "status", null, true], ["latency_ms", "latency ms", num, true], ["error", "error"]],
      path.attempts, { name: "attempts" }) : h("p", { class: "note", text: "no attempt (refused before any target)" })));
    box.append(panel("Decisions (policy and routing, with their reasons)", path.decisions.length ?
      table([["n", "#", null, true], ["stage", "stage"], ["action", "action"], ["rule", "rule"],
             ["cls", "class"], ["detector", "detector"], ["target", "target"],
             ["reason", "reason", null, false, true]], path.decisions, { name: "decisions" })
      : h("p", { class: "note", text: "no decision recorded" })));
    box.append(panel("Guard findings (never the values)", path.findings.length ?
      table([["n", "#", null, true], ["cls", "class"], ["detector", "detector"], ["domain", "domain"],
             ["message_index", "message", null, true]], path.findings, { name: "findings" })
      : h("p", { class: "note", text: "nothing found" })));
  }

  async function openRequest(id, box) {
    box.replaceChildren(h("p", { class: "note", text: "Loading " + id + "…" }));
    try {
      renderPath(box, await api("/admin/requests/" + encodeURIComponent(id)));
    } catch (e) {
      box.replaceChildren(h("p", { class: "error", role: "alert", text: e.message }));
    }
  }

  $("explorer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("explorer-id").value.trim();
    if (id) location.hash = "requests/" + encodeURIComponent(id);
  });

  async function requests(el, id) {
    const list = $("explorer-list");
    if (id) {
      $("explorer-id").value = id;
      await openRequest(id, $("explorer-detail"));
    } else {
      $("explorer-detail").replaceChildren();
    }
    list.replaceChildren();
    const filter = h("select", { id: "explorer-status", "aria-label": "status filter" },
      h("option", { value: "", text: "all requests" }), h("option", { value: "error", text: "errors only" }),
      h("option", { value: "ok", text: "successes only" }));
    const rows = h("div", {});
    const more = h("button", { type: "button", id: "explorer-more", text: "Older requests" });
    let before = null;
    async function page(reset) {
      if (reset) { before = null; rows.replaceChildren(); }
      const q = "/admin/requests?limit=50" + (filter.value ? "&status=" + filter.value : "") +
                (before ? "&before=" + encodeURIComponent(before) : "");
      const data = await api(q);
      if (data.data.length) before = data.data[data.data.length - 1].created_at;
      more.hidden = data.data.length < 50;
      rows.append(table([["created_at", "time (UTC)", (v) => v.slice(0, 19).replace("T", " ")],
        ["id", "id"], ["route", "route"], ["target", "target"], ["ownership", "ownership"],
        ["status", "status", null, true], ["attempts", "attempts", null, true],
        ["latency_ms", "latency ms", num, true]], data.data,
        { name: "recent", onclick: (r) => { location.hash = "requests/" + encodeURIComponent(r.id); } }));
    }
    filter.addEventListener("change", () => page(true));
    more.addEventListener("click", () => page(false));
    list.append(filter, rows, more);
    await page(true);
  }

  // --- playground ---------------------------------------------------------------------------

  function playgroundKey() { return $("pg-key").value.trim() || state.key; }

  async function playground() {
    const select = $("pg-route");
    if (select.options.length) return;
    const models = await api("/v1/models", { key: playgroundKey() });
    for (const m of models.data) select.append(h("option", { value: m.id, text: m.id }));
    const preferred = [...select.options].find((o) => o.value === "default");
    if (preferred) select.value = "default";
  }

  $("pg-key").addEventListener("change", () => { $("pg-route").replaceChildren(); playground(); });

  $("playground-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = $("pg-result");
    out.dataset.state = "loading";
    out.replaceChildren(h("p", { class: "note", text: "Waiting for the answer…" }));
    $("pg-send").disabled = true;
    const body = { model: $("pg-route").value, max_tokens: Number($("pg-max-tokens").value) || 24,
                   messages: [{ role: "user", content: $("pg-message").value }] };
    try {
      const resp = await fetch("/v1/chat/completions", { method: "POST", body: JSON.stringify(body),
        headers: { Authorization: "Bearer " + playgroundKey(), "Content-Type": "application/json" } });
      const data = await resp.json();
      const head = (n) => resp.headers.get(n);
      out.replaceChildren();
      if (!resp.ok) {
        out.append(h("p", { class: "error", role: "alert", text: "HTTP " + resp.status + ": " +
          ((data.error || {}).message || "error") }));
      } else {
        out.append(panel("Answer", h("div", { class: "answer", "data-answer": "1",
          text: ((data.choices || [])[0] || {}).message ? data.choices[0].message.content : "" })));
      }
      const rid = head("x-request-id");
      out.append(panel("Which target answered", h("dl", { class: "kv", "data-served": "1" },
        [["provider", "x-emancipate-provider"], ["model", "x-emancipate-model"],
         ["ownership", "x-emancipate-ownership"], ["attempts", "x-emancipate-attempts"],
         ["request id", "x-request-id"]].flatMap(([label, name]) => [h("dt", { text: label }),
          h("dd", { "data-header": name, text: head(name) || "–" })]),
        h("dt", { text: "usage" }), h("dd", { text: data.usage ? data.usage.prompt_tokens +
          " prompt + " + data.usage.completion_tokens + " completion tokens" : "–" }))));
      if (rid) {
        const pathBox = h("div", { "data-path-for": rid });
        out.append(h("h2", { text: "Why: the request's path" }), pathBox,
                   h("p", {}, h("a", { href: "#requests/" + encodeURIComponent(rid),
                                      text: "open in the request explorer" })));
        // The ledger writes every fraction of a second: wait for the record to land.
        for (let i = 0; i < 40; i++) {
          try { renderPath(pathBox, await api("/admin/requests/" + encodeURIComponent(rid))); break; }
          catch (e) {
            if (e.status !== 404) { pathBox.replaceChildren(h("p", { class: "error", text: e.message })); break; }
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      }
      out.dataset.state = "ready";
    } catch (e) {
      out.replaceChildren(h("p", { class: "error", role: "alert", text: e.message }));
      out.dataset.state = "error";
    } finally {
      $("pg-send").disabled = false;
    }
  });

  // --- start --------------------------------------------------------------------------------
  // An OIDC log-in comes back as /admin/dashboard#session=<token>: the fragment never reaches
  // a server; move the token to sessionStorage and out of the address bar at once.
  if (location.hash.startsWith("#session=")) {
    state.key = decodeURIComponent(location.hash.slice("#session=".length));
    history.replaceState(null, "", location.pathname);
  }
  fetch("/admin/oidc/config").then((r) => r.json())
    .then((c) => { $("sso-login").hidden = !c.enabled; }).catch(() => {});
  if (state.key) login(state.key); else showLogin();
})();
