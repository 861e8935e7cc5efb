/**
 * One account for auditors: balances, role, KYC tier, frozen flag, and its history in tabs
 * (transactions, token transfers, fees, held payments) with filters, cursor pages and CSV/JSON exports.
 */

import { request } from "../api.js";
import { downloadLink, facts, pager, table } from "../components.js";
import { h } from "../dom.js";
import { ether, token, yesNo } from "../format.js";
import { go, href } from "../router.js";
import { COLUMNS, KINDS, TITLES } from "./history.js";

const FILTERS = ["from_time", "to_time", "counterparty"];

/** "2026-11-24" (UTC day) as unix seconds, at its start or its end. */
function dayToUnix(day, end) {
  if (!day) return "";
  const ms = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(ms) ? "" : String(ms / 1000 + (end ? 86_399 : 0));
}

function unixToDay(seconds) {
  if (!seconds) return "";
  const date = new Date(Number(seconds) * 1000);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().slice(0, 10);
}

/**
 * @param {string} address
 * @param {URLSearchParams} query
 */
function filterForm(address, query) {
  const from = h("input", { id: "f-from", name: "from", type: "date", value: unixToDay(query.get("from_time")) });
  const to = h("input", { id: "f-to", name: "to", type: "date", value: unixToDay(query.get("to_time")) });
  const party = h("input", {
    id: "f-party",
    name: "counterparty",
    value: query.get("counterparty") ?? "",
    placeholder: "0x…",
    spellcheck: "false",
    autocomplete: "off",
  });
  return h(
    "form",
    {
      class: "filters",
      "aria-label": "Filter the history",
      onsubmit: (event) => {
        event.preventDefault();
        go(`/accounts/${encodeURIComponent(address)}`, {
          tab: query.get("tab"),
          limit: query.get("limit"),
          from_time: dayToUnix(from.value, false),
          to_time: dayToUnix(to.value, true),
          counterparty: party.value.trim(),
        });
      },
    },
    h("div", null, h("label", { for: "f-from" }, "From (UTC day)"), from),
    h("div", null, h("label", { for: "f-to" }, "To (UTC day)"), to),
    h("div", null, h("label", { for: "f-party" }, "Counterparty"), party),
    h("button", { type: "submit" }, "Filter"),
  );
}

/** @param {import("../router.js").Route} route */
export async function accountView(route) {
  const address = route.parts[1];
  const query = route.query;
  const tab = KINDS.includes(query.get("tab")) ? query.get("tab") : "transactions";
  const cursor = query.get("cursor");
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name)]));
  const path = `/accounts/${encodeURIComponent(address)}`;
  const [account, history] = await Promise.all([
    request(path),
    request(`${path}/${tab}`, { params: { ...filters, cursor, limit: query.get("limit") ?? 25 } }),
  ]);
  const pageHref = (c) => href(`/accounts/${encodeURIComponent(account.address)}`, { ...filters, tab, limit: query.get("limit"), cursor: c });
  const tabHref = (kind) => href(`/accounts/${encodeURIComponent(account.address)}`, { ...filters, tab: kind, limit: query.get("limit") });
  const exportParams = (format) => ({ ...filters, format, kind: tab });
  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Account"),
    h("p", { class: "mono break lead" }, account.address),
    h(
      "section",
      { class: "card", "aria-labelledby": "account-facts" },
      h("h2", { id: "account-facts" }, `State at block #${account.block}`),
      facts([
        ["Token balance", h("span", { "data-testid": "token-balance" }, account.token_balance === null ? "–" : token(account.token_balance))],
        ["Balance", ether(account.balance)],
        ["Points", account.points ?? "–"],
        ["Role", account.role ?? "none"],
        ["KYC tier", account.kyc_tier ?? "–"],
        ["Frozen", account.frozen === null ? "–" : yesNo(account.frozen)],
        ["Nonce", String(account.nonce)],
        ["Contract", yesNo(account.is_contract)],
      ]),
    ),
    h(
      "section",
      { class: "card stack", "aria-labelledby": "history-heading" },
      h("h2", { id: "history-heading" }, "History"),
      h(
        "nav",
        { class: "tabs", "aria-label": "History kind" },
        KINDS.map((kind) => h("a", { href: tabHref(kind), "aria-current": kind === tab ? "page" : null }, TITLES[kind])),
      ),
      filterForm(account.address, query),
      h(
        "p",
        { class: "exports" },
        "Export all matching rows: ",
        downloadLink("CSV", `${path}/export`, exportParams("csv"), `${account.address}-${tab}.csv`),
        " · ",
        downloadLink("JSON", `${path}/export`, exportParams("json"), `${account.address}-${tab}.json`),
      ),
      table(`${TITLES[tab]}, newest first`, COLUMNS[tab], history.items, { testid: "history", empty: "No rows on this page." }),
      pager(pageHref, cursor, history.next_cursor),
    ),
  );
}
