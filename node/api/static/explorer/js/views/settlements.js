/**
 * Settlements (escrow deals, batch payouts, netting cycles): a filterable list and one
 * settlement with its parties, amounts and the events that moved it.
 */

import { request } from "../api.js";
import { addressLink, blockLink, facts, pager, table, txLink } from "../components.js";
import { h } from "../dom.js";
import { time, token } from "../format.js";
import { go, href } from "../router.js";

const KIND_NAMES = { escrow: "Escrow", batch: "Batch payout", netting: "Netting cycle" };
const STATES = ["open", "disputed", "closed", "paid", "settled"];

function select(id, name, options, value) {
  return h(
    "select",
    { id, name },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === (value ?? "") }, text)),
  );
}

/** @param {URLSearchParams} query */
function filterForm(query) {
  const kind = select("s-kind", "kind", [["", "Any kind"], ...Object.entries(KIND_NAMES)], query.get("kind"));
  const state = select("s-state", "state", [["", "Any state"], ...STATES.map((s) => [s, s])], query.get("state"));
  const party = h("input", { id: "s-party", name: "party", value: query.get("party") ?? "", placeholder: "0x…", spellcheck: "false", autocomplete: "off" });
  return h(
    "form",
    {
      class: "filters",
      "aria-label": "Filter settlements",
      onsubmit: (event) => {
        event.preventDefault();
        go("/settlements", { kind: kind.value, state: state.value, party: party.value.trim(), limit: query.get("limit") });
      },
    },
    h("div", null, h("label", { for: "s-kind" }, "Kind"), kind),
    h("div", null, h("label", { for: "s-state" }, "State"), state),
    h("div", null, h("label", { for: "s-party" }, "Party"), party),
    h("button", { type: "submit" }, "Filter"),
  );
}

const settlementHref = (s) => href(`/settlements/${encodeURIComponent(s.kind)}/${encodeURIComponent(s.id)}`);

/** @param {import("../router.js").Route} route */
export async function settlementsView(route) {
  const query = route.query;
  const filters = { kind: query.get("kind"), state: query.get("state"), party: query.get("party") };
  const cursor = query.get("cursor");
  const page = await request("/settlements", { params: { ...filters, cursor, limit: query.get("limit") ?? 25 } });
  const pageHref = (c) => href("/settlements", { ...filters, limit: query.get("limit"), cursor: c });
  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Settlements"),
    filterForm(query),
    table(
      "Settlements, newest opened first",
      [
        { title: "Settlement", cell: (s) => h("a", { href: settlementHref(s) }, `${KIND_NAMES[s.kind] ?? s.kind} ${s.id}`) },
        { title: "State", cell: (s) => h("span", { class: `badge state-${s.state}` }, s.state) },
        { title: "Parties", cell: (s) => h("ul", { class: "plain" }, s.parties.map((p) => h("li", null, addressLink(p)))) },
        { title: "Total", cell: (s) => token(s.total), numeric: true },
        { title: "Settled", cell: (s) => token(s.settled), numeric: true },
        { title: "Opened", cell: (s) => (s.opened ? time(s.opened.timestamp) : "–") },
        { title: "Updated", cell: (s) => (s.updated ? time(s.updated.timestamp) : "–") },
      ],
      page.items,
      { testid: "settlements", empty: "No settlements match." },
    ),
    pager(pageHref, cursor, page.next_cursor),
  );
}

/** @param {import("../router.js").Route} route */
export async function settlementView(route) {
  const [, kind, id] = route.parts;
  const s = await request(`/settlements/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`);
  return h(
    "section",
    { class: "stack" },
    h("h1", null, `${KIND_NAMES[s.kind] ?? s.kind} ${s.id}`),
    h(
      "section",
      { class: "card", "aria-labelledby": "settlement-facts" },
      h("h2", { id: "settlement-facts" }, "Summary"),
      facts([
        ["State", h("span", { class: `badge state-${s.state}`, "data-testid": "settlement-state" }, s.state)],
        ["Contract", addressLink(s.contract, { full: true })],
        ["Parties", h("ul", { class: "plain" }, s.parties.map((p) => h("li", null, addressLink(p, { full: true }))))],
        ["Total", token(s.total)],
        ["Settled", token(s.settled)],
        ["Opened", s.opened ? [time(s.opened.timestamp), " in ", blockLink(s.opened.block_number)] : "–"],
        ["Updated", s.updated ? [time(s.updated.timestamp), " in ", blockLink(s.updated.block_number)] : "–"],
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "settlement-events" },
      h("h2", { id: "settlement-events" }, "Events"),
      table(
        "Events of this settlement, oldest first",
        [
          { title: "Event", cell: (e) => e.name },
          { title: "Time", cell: (e) => time(e.timestamp) },
          { title: "Block", cell: (e) => blockLink(e.block_number) },
          { title: "Transaction", cell: (e) => txLink(e.tx_hash) },
        ],
        s.events,
        { testid: "settlement-events" },
      ),
    ),
  );
}
