/**
 * An account's history tables (transactions, token transfers, fees, held payments, points): the columns of each kind,
 * shared by the auditor's account page and the customer's wallet.
 */

import { addressLink, blockLink, txLink } from "../components.js";
import { h } from "../dom.js";
import { ether, time, token, units, WALLET_TOKEN } from "../format.js";

export const KINDS = /** @type {const} */ (["transactions", "transfers", "fees", "holds", "points"]);

export const TITLES = { transactions: "Transactions", transfers: "Token transfers", fees: "Fees paid", holds: "Held payments", points: "Points" };

/** A held payment's status: "held for review" until compliance (or the payer) decides it. */
const HOLD_STATUS = { held: ["held for review", "pending"], released: ["released", "ok"], rejected: ["rejected", "bad"], cancelled: ["cancelled", "bad"] };

function holdStatus(status) {
  const [text, tone] = HOLD_STATUS[status] ?? [status, ""];
  return h("span", { class: `badge ${tone}` }, text);
}

const arrow = (direction) => ({ out: "↑ out", in: "↓ in", self: "↺ self" })[direction] ?? direction;

/** A token amount: the WalletToken with its 2 decimals, another token in base units. */
function tokenAmount(row, value) {
  return row.token?.toLowerCase() === WALLET_TOKEN.address ? token(value) : `${units(value, 0)} units`;
}

/** A points event's name in words, and the offer it concerns. */
function pointsEvent(r) {
  const name = r.event.replaceAll("_", " ");
  return r.offer_id === null ? name : `${name} #${r.offer_id}`;
}

/** A signed points change: credit green, debit red, a merchant's offer events a dash. */
function pointsChange(change) {
  if (change === "0") return "–";
  const debit = change.startsWith("-");
  return h("span", { class: debit ? "debit" : "credit" }, debit ? `−${change.slice(1)}` : `+${change}`);
}

/** A wallet's own view of its token transfers: who with, and a signed amount. */
export const WALLET_TRANSFER_COLUMNS = [
  { title: "When", cell: (r) => time(r.timestamp) },
  { title: "With", cell: (r) => addressLink(r.direction === "in" ? r.from : r.to) },
  {
    title: "Amount",
    cell: (r) => h("span", { class: r.direction === "in" ? "credit" : "debit" }, `${{ in: "+", out: "−" }[r.direction] ?? ""}${tokenAmount(r, r.amount)}`),
    numeric: true,
  },
  { title: "Tx", cell: (r) => txLink(r.tx_hash) },
];

/** Column definitions per history kind. */
export const COLUMNS = {
  transactions: [
    { title: "Time", cell: (r) => time(r.timestamp) },
    { title: "Tx", cell: (r) => txLink(r.hash) },
    { title: "Block", cell: (r) => blockLink(r.block_number) },
    { title: "Direction", cell: (r) => arrow(r.direction) },
    { title: "From", cell: (r) => addressLink(r.from) },
    { title: "To", cell: (r) => addressLink(r.to) },
    { title: "Value", cell: (r) => ether(r.value), numeric: true },
    { title: "Status", cell: (r) => h("span", { class: `badge ${r.status === "success" ? "ok" : "bad"}` }, r.status) },
  ],
  transfers: [
    { title: "Time", cell: (r) => time(r.timestamp) },
    { title: "Tx", cell: (r) => txLink(r.tx_hash) },
    { title: "Direction", cell: (r) => arrow(r.direction) },
    { title: "From", cell: (r) => addressLink(r.from) },
    { title: "To", cell: (r) => addressLink(r.to) },
    { title: "Token", cell: (r) => (r.token?.toLowerCase() === WALLET_TOKEN.address ? WALLET_TOKEN.symbol : addressLink(r.token)) },
    { title: "Amount", cell: (r) => tokenAmount(r, r.amount), numeric: true },
  ],
  holds: [
    { title: "Held", cell: (r) => time(r.timestamp) },
    { title: "Tx", cell: (r) => txLink(r.tx_hash) },
    { title: "Hold", cell: (r) => `#${r.hold_id}` },
    { title: "Direction", cell: (r) => arrow(r.direction) },
    { title: "From", cell: (r) => addressLink(r.from) },
    { title: "To", cell: (r) => addressLink(r.to) },
    { title: "Amount", cell: (r) => tokenAmount(r, r.amount), numeric: true },
    { title: "Why", cell: (r) => r.reasons.map((reason) => reason.replaceAll("_", " ")).join(", ") },
    { title: "Status", cell: (r) => holdStatus(r.status) },
    { title: "Decided", cell: (r) => (r.closed_tx_hash ? txLink(r.closed_tx_hash) : "–") },
  ],
  points: [
    { title: "Time", cell: (r) => time(r.timestamp) },
    { title: "Tx", cell: (r) => txLink(r.tx_hash) },
    { title: "Event", cell: pointsEvent },
    { title: "Account", cell: (r) => addressLink(r.account) },
    { title: "With", cell: (r) => (r.counterparty ? addressLink(r.counterparty) : "–") },
    { title: "Items", cell: (r) => r.quantity ?? "–", numeric: true },
    { title: "Points", cell: (r) => units(r.points, 0), numeric: true },
    { title: "Change", cell: (r) => pointsChange(r.change), numeric: true },
  ],
  fees: [
    { title: "Time", cell: (r) => time(r.timestamp) },
    { title: "Tx", cell: (r) => txLink(r.tx_hash) },
    { title: "Kind", cell: (r) => r.kind },
    { title: "Recipient", cell: (r) => addressLink(r.recipient) },
    { title: "Payment", cell: (r) => tokenAmount(r, r.amount), numeric: true },
    { title: "Fee", cell: (r) => tokenAmount(r, r.fee), numeric: true },
  ],
};
