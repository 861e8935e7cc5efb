/**
 * One transaction: status, block, parties, value and fee, its events as the node decoded
 * them (the bank's contracts by their ABIs; anything unknown shown as raw topics and data),
 * and, once mined, its internal calls (the node's call trace, re-executed on request).
 */

import { request } from "../api.js";
import { addressLink, blockLink, facts, mono, table } from "../components.js";
import { h } from "../dom.js";
import { ether, isAddress, time, units } from "../format.js";

/** Arguments that are token amounts of the WalletToken's events (2 decimals). */
const TOKEN_AMOUNT_ARGS = new Set(["value", "amount", "paymentAmount", "fee", "total", "toPayee", "toPayer", "net", "gross", "netMoved"]);

/**
 * One decoded argument: addresses as links, WalletToken amounts with their decimals.
 * @param {string} name
 * @param {unknown} value
 * @param {string|null} contract
 */
function argValue(name, value, contract) {
  if (Array.isArray(value)) return h("span", null, value.map((v, i) => [i ? ", " : "", argValue(name, v, contract)]));
  if (typeof value === "string" && isAddress(value)) return addressLink(value, { full: true });
  const isToken = contract && contract !== "AccountRules" && contract !== "AdminGroup" && contract !== "Points";
  if (typeof value === "string" && /^\d+$/.test(value) && isToken && TOKEN_AMOUNT_ARGS.has(name)) {
    return h("span", { title: `${value} base units` }, `${units(value, 2)} (${value})`);
  }
  return h("span", { class: typeof value === "string" && value.startsWith("0x") ? "mono break" : null }, String(value));
}

/** @param {any} event */
function eventCell(event) {
  if (event.event) {
    return h(
      "dl",
      { class: "args" },
      Object.entries(event.args ?? {}).map(([name, value]) => [h("dt", null, name), h("dd", null, argValue(name, value, event.contract))]),
    );
  }
  return h(
    "div",
    { class: "raw" },
    h("p", { class: "muted" }, "Not decoded (unknown contract or event):"),
    h("ol", { class: "plain mono break" }, (event.raw?.topics ?? []).map((t) => h("li", null, t))),
    h("p", { class: "mono break" }, `data: ${event.raw?.data ?? ""}`),
  );
}

/**
 * The internal calls card: every frame of the call trace, indented by depth; a trace the
 * node could not run (busy, timed out) is said so, without failing the page.
 * @param {string} hash
 */
async function callsCard(hash) {
  let body;
  try {
    const { calls } = await request(`/transactions/${encodeURIComponent(hash)}/calls`);
    body = table(
      "Calls the transaction made, from the node's trace",
      [
        { title: "Type", cell: (c) => `${"\u00a0\u00a0".repeat(c.depth)}${c.depth ? "↳ " : ""}${c.type}` },
        { title: "From", cell: (c) => addressLink(c.from) },
        { title: "To", cell: (c) => addressLink(c.to) },
        { title: "Value", cell: (c) => ether(c.value) },
        { title: "Gas used", cell: (c) => String(c.gas_used), numeric: true },
        { title: "Outcome", cell: (c) => (c.error ? h("span", { class: "badge bad" }, c.revert_reason ? `${c.error}: ${c.revert_reason}` : c.error) : "ok") },
      ],
      calls,
      { empty: "No calls.", testid: "tx-calls" },
    );
  } catch (error) {
    body = h("p", { class: "muted", "data-testid": "tx-calls" }, `Internal calls unavailable: ${error.message}`);
  }
  return h("section", { class: "card", "aria-labelledby": "tx-calls-title" }, h("h2", { id: "tx-calls-title" }, "Internal calls"), body);
}

/** @param {import("../router.js").Route} route */
export async function transactionView(route) {
  const hash = route.parts[1];
  const tx = await request(`/transactions/${encodeURIComponent(hash)}`);
  const statusClass = { success: "ok", failed: "bad" }[tx.status] ?? "pending";
  const calls = tx.block ? await callsCard(tx.hash) : null;
  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Transaction"),
    h(
      "section",
      { class: "card", "aria-labelledby": "tx-facts" },
      h("h2", { id: "tx-facts" }, "Summary"),
      facts([
        ["Hash", mono(tx.hash)],
        ["Status", h("span", { class: `badge ${statusClass}`, "data-testid": "tx-status" }, tx.status)],
        ["Block", tx.block ? [blockLink(tx.block.number), ` (position ${tx.block.index}, ${time(tx.block.timestamp)})`] : "pending"],
        ["From", addressLink(tx.from, { full: true })],
        ["To", tx.to ? addressLink(tx.to, { full: true }) : ["contract creation ", addressLink(tx.contract_address, { full: true })]],
        ["Value", ether(tx.value)],
        ["Fee", tx.fee === null ? "–" : ether(tx.fee)],
        ["Gas used / limit", `${tx.gas_used ?? "–"} / ${tx.gas}`],
        ["Gas price", `${tx.gas_price} wei`],
        ["Nonce", String(tx.nonce)],
        ["Type", String(tx.type)],
        ["Input", h("details", null, h("summary", null, `${Math.max(0, (tx.input.length - 2) / 2)} bytes`), mono(tx.input))],
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "tx-events" },
      h("h2", { id: "tx-events" }, `Events (${tx.events.length})`),
      table(
        "Events the transaction emitted, decoded by the node",
        [
          { title: "#", cell: (e) => String(e.log_index), numeric: true },
          { title: "Contract", cell: (e) => [h("strong", null, e.contract ?? "other"), h("br"), addressLink(e.address)] },
          { title: "Event", cell: (e) => e.event ?? "raw log" },
          { title: "Arguments", cell: eventCell },
        ],
        tx.events,
        { empty: "No events.", testid: "tx-events" },
      ),
    ),
    calls,
  );
}
