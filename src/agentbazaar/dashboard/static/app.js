// agentbazaar dashboard: draws each page from the JSON API; redraws on server-sent events.
"use strict";
const main = document.getElementById("main");
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) =>
  ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const short = (h) => (h && h.length > 18 ? h.slice(0, 10) + "…" + h.slice(-6) : h || "");
const txLink = (h) => (h ? `<a class="hash" href="/tx/${esc(h)}" title="${esc(h)}">${esc(short(h))}</a>` : "-");
const addr = (a) => (a ? `<span class="hash" title="${esc(a)}">${esc(short(a))}</span>` : "-");
const agentLink = (id, name) => `<a href="/agents/${esc(id)}">${esc(name || "#" + id)}</a>`;

class Missing extends Error {}

async function api(path) {
  const r = await fetch("/api" + path, {headers: {Accept: "application/json"}});
  const body = await r.json();
  if (r.status === 404) throw new Missing(body.message || "not found");
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body;
}

function table(cols, rows, empty = "nothing yet") {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  const head = cols.map((c) => `<th>${esc(c)}</th>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

function paymentRows(ps) {
  return ps.map((p) => [esc(p.created), esc(p.wallet), esc(p.scheme), esc(p.amount), addr(p.to),
    `<span class="${p.status === "failed" ? "bad" : "ok"}">${esc(p.status)}</span>`, txLink(p.tx)]);
}
const PAY_COLS = ["when", "wallet", "scheme", "amount", "to", "status", "transaction"];

function barChart(points, title) {  // payments over time: one bar per time bucket
  const w = 640, h = 160, pad = 24;
  if (!points.length) return `<p class="muted">no payments yet</p>`;
  const max = Math.max(...points.map((p) => p.count));
  const bw = Math.max(2, (w - 2 * pad) / points.length - 2);
  const bars = points.map((p, i) => {
    const bh = ((h - 2 * pad) * p.count) / max;
    return `<rect x="${pad + i * (bw + 2)}" y="${h - pad - bh}" width="${bw}" height="${bh}" fill="#4a7bd0"><title>${esc(p.time)}: ${p.count} payments, ${esc(p.amount)}</title></rect>`;
  }).join("");
  return `<svg id="chart-payments" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">
    <text x="${pad}" y="16" font-size="12">${esc(title)} (max ${max} per bucket)</text>${bars}</svg>`;
}

function budgetChart(wallets) {  // spend against the rolling 24 h budget, per wallet and token
  const rows = wallets.flatMap((w) => w.budgets.filter((b) => b.daily).map((b) => ({w: w.name, b})));
  if (!rows.length) return `<p class="muted">no budgets set</p>`;
  const width = 640, line = 26;
  const bars = rows.map(({w, b}, i) => {
    const share = Math.min(1, Number(b.spent.units) / Math.max(1, Number(b.daily.units)));
    const y = 10 + i * line;
    return `<text x="4" y="${y + 14}" font-size="12">${esc(w)}</text>
      <rect x="120" y="${y}" width="400" height="16" fill="#e3e6eb"/>
      <rect x="120" y="${y}" width="${400 * share}" height="16" fill="${share > 0.9 ? "#b3261e" : "#3f9b5c"}"/>
      <text x="528" y="${y + 13}" font-size="11">${esc(b.spent.amount)} of ${esc(b.daily.amount)}</text>`;
  }).join("");
  return `<svg id="chart-budget" width="${width}" height="${20 + rows.length * line}" role="img" aria-label="spend against budget">${bars}</svg>`;
}

const views = {
  "": async () => {
    const [o, chart, wallets, pays] = await Promise.all([api("/overview"), api("/chart"),
      api("/wallets"), api("/payments?limit=10")]);
    return `<h1>Overview</h1><div class="cards">
      <div class="card">chain<b>${esc(o.chain.id)}</b>${esc(o.chain.backend)}, block ${esc(o.chain.block)}</div>
      <div class="card">agents<b id="count-agents">${o.counts.agents}</b></div>
      <div class="card">payments<b id="count-payments">${o.counts.payments}</b></div>
      <div class="card">receipts<b id="count-receipts">${o.counts.receipts}</b></div></div>
      <h2>Payments over time</h2>${barChart(chart, "payments per hour")}
      <h2>Spend against budget (rolling 24 h)</h2>${budgetChart(wallets)}
      <h2>Latest payments</h2>${table(PAY_COLS, paymentRows(pays))}`;
  },
  async agents() {
    const list = await api("/agents");
    return `<h1>Agents</h1>` + table(["id", "name", "trusted", "reputation", "score", "prices"],
      list.map((a) => [esc(a.agentId), agentLink(a.agentId, a.name),
        a.trusted ? `<span class="ok">yes</span>` : `<span class="bad">no: ${esc(a.reason)}</span>`,
        a.reputation == null ? "-" : `${esc(a.reputation.toFixed(2))} (${a.reviews})`,
        esc(a.score), a.skills.map((s) => s.prices.map((p) => `${esc(s.id)} ${esc(p.amount)}`).join(", ")).join("; ")]),
      "no agents registered");
  },
  async agent(id) {
    const a = await api(`/agents/${id}`);
    return `<h1>Agent #${esc(a.agentId)}: ${esc(a.name)}</h1>
      <p>${esc(a.description)}</p>
      <table><tbody>
      <tr><th>owner</th><td class="hash">${esc(a.owner)}</td></tr>
      <tr><th>wallet</th><td class="hash">${esc(a.wallet)}</td></tr>
      <tr><th>trusted</th><td>${a.trusted ? "yes" : "no: " + esc(a.reason)}</td></tr>
      <tr><th>card</th><td>${esc(a.card)}</td></tr>
      <tr><th>reputation (raw)</th><td id="rep-raw">${a.reputation == null ? "no proven feedback" : esc(a.reputation.toFixed(2)) + " from " + a.reviews + " paid reviews"}</td></tr>
      <tr><th>reputation (weighted score)</th><td id="rep-weighted">${esc(a.score)}</td></tr>
      <tr><th>validation</th><td>${a.validation.count ? esc(a.validation.count) + " verdicts, average " + esc(a.validation.average) : "none"}</td></tr>
      </tbody></table>
      <h2>Skills and prices</h2>${table(["skill", "name", "price", "scheme"],
        a.skills.flatMap((s) => s.prices.map((p) => [esc(s.id), esc(s.name), esc(p.amount), esc(p.scheme)])))}
      <h2>Receipts</h2>${receiptTable(a.receipts)}
      <h2>Payments to this agent</h2>${table(PAY_COLS, paymentRows(a.payments))}
      <h2>Feedback</h2>${table(["client", "value", "proven"], a.feedback.map((f) =>
        [addr(f.client), esc(f.value / 10 ** f.decimals), f.proven ? "yes" : "no: " + esc(f.reason)]))}`;
  },
  async payments() {
    return `<h1>Payments</h1>` + table(PAY_COLS, paymentRows(await api("/payments?limit=200")));
  },
  async tx(hash) {
    const t = await api(`/tx/${hash}`);
    const c = t.chain;
    return `<h1>Transaction</h1><p class="hash">${esc(t.hash)}</p>` +
      (c ? `<table><tbody><tr><th>block</th><td>${esc(c.block)}</td></tr>
        <tr><th>status</th><td class="${c.status ? "ok" : "bad"}">${c.status ? "success" : "reverted"}</td></tr>
        <tr><th>time</th><td>${esc(c.time)}</td></tr><tr><th>from</th><td class="hash">${esc(c.from)}</td></tr>
        <tr><th>to</th><td class="hash">${esc(c.to)}</td></tr><tr><th>gas used</th><td>${esc(c.gasUsed)}</td></tr></tbody></table>`
        : `<p class="muted">not on chain (yet)</p>`) +
      `<h2>Payments</h2>${table(PAY_COLS, paymentRows(t.payments))}<h2>Receipts and validation</h2>${receiptTable(t.receipts)}`;
  },
  async receipts() { return `<h1>Receipts</h1>` + receiptTable(await api("/receipts")); },
  async wallets() {
    const ws = await api("/wallets");
    return `<h1>Wallets</h1>${budgetChart(ws)}` + table(["wallet", "address", "balances", "escrowed"],
      ws.map((w) => [esc(w.name), addr(w.address), w.balances.map((b) => esc(b.amount)).join("<br>"),
        Object.keys(w.escrowed).length ? esc(JSON.stringify(w.escrowed)) : "-"]));
  },
  async contracts() {
    return `<h1>Contracts</h1>` + table(["address", "template", "deployment"],
      (await api("/contracts")).map((c) => [addr(c.address), esc(c.template), txLink(c.tx_hash)]),
      "no contracts made with `bazaar contract new` on this chain");
  },
  async datasets() {
    return `<h1>Datasets</h1>` + table(["id", "cid", "version", "publisher"],
      (await api("/datasets")).map((d) => [esc(d.id), `<span class="hash">${esc(d.cid)}</span>`,
        esc(d.version), addr(d.publisher)]), "no datasets published");
  },
};

function receiptTable(rs) {
  return table(["when", "receipt", "provider", "price", "status", "verdict", "payment"], rs.map((r) => [
    esc(r.time), `<span class="hash" title="${esc(r.id)}">${esc(short(r.id))}</span>`,
    agentLink(r.provider_agent_id, "#" + r.provider_agent_id), esc(r.amount), esc(r.status),
    r.verdict == null ? `<span class="muted">not validated</span>` :
      `<span class="${r.verdict === 100 ? "ok" : "bad"}">${r.verdict === 100 ? "pass" : "FAIL"} (${r.verdict})</span>` +
      (r.verdict_tx ? " " + txLink(r.verdict_tx) : ""),
    txLink(r.tx_hash)]), "no receipts");
}

async function render() {
  const parts = location.pathname.split("/").filter(Boolean);
  const [page, arg] = parts;
  const view = page === "agents" && arg ? views.agent : page === "tx" ? views.tx : views[page || ""];
  try {
    if (!view) throw new Missing(`no page ${location.pathname}`);
    main.innerHTML = await view(arg);
  } catch (e) {
    main.innerHTML = e instanceof Missing
      ? `<div class="notfound"><h1>Not found</h1><p id="notfound">${esc(e.message)}</p></div>`
      : `<div class="notfound"><h1>Error</h1><p>${esc(e.message)}</p></div>`;
  }
}

let updates = 0;
function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/events");
  source.addEventListener("change", () => {
    updates += 1;
    live.textContent = `live (${updates} update${updates === 1 ? "" : "s"})`;
    live.className = "on";
    if (updates > 1) render();
  });
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = ""; };
}

render();
listen();
