/**
 * Blocks: the newest-first list (cursor pages) and one block with its transactions, proposer
 * and verification status (commit seals counted against the quorum and re-checked by the node).
 * Block 0 has neither proposer nor seals: every node builds it from the genesis document, so it
 * is shown as the genesis, not as a block proposed by the zero address.
 */

import { request } from "../api.js";
import { addressLink, blockLink, facts, mono, pager, table, txLink } from "../components.js";
import { h } from "../dom.js";
import { short, time } from "../format.js";
import { href } from "../router.js";

/** @param {import("../router.js").Route} route */
export async function blocksView(route) {
  const cursor = route.query.get("cursor");
  const limit = route.query.get("limit") ?? 25;
  const page = await request("/blocks", { params: { cursor, limit } });
  const pageHref = (c) => href("/blocks", { cursor: c, limit: route.query.get("limit") });
  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Blocks"),
    table(
      "Blocks, newest first",
      [
        { title: "Block", cell: (b) => blockLink(b.number) },
        { title: "Hash", cell: (b) => h("span", { class: "mono", title: b.hash }, short(b.hash)) },
        { title: "Sealed", cell: (b) => time(b.timestamp) },
        { title: "Txs", cell: (b) => String(b.tx_count), numeric: true },
        { title: "Gas used", cell: (b) => b.gas_used.toLocaleString("en"), numeric: true },
        { title: "Proposer", cell: (b) => (isGenesis(b) ? genesisMark() : addressLink(b.proposer)) },
      ],
      page.items,
      { testid: "blocks" },
    ),
    pager(pageHref, cursor, page.next_cursor),
  );
}

/** @param {{number: number}} block */
function isGenesis(block) {
  return block.number === 0;
}

/** What stands for block 0's proposer: the genesis has none. */
function genesisMark() {
  return h("span", { class: "muted" }, "genesis");
}

/** The "verification status" of a block: its seals against the quorum, and the re-check. */
export function sealStatus(seals) {
  const ok = seals.valid && seals.count >= seals.quorum;
  return h(
    "span",
    { class: `badge ${ok ? "ok" : "bad"}`, "data-testid": "seal-status" },
    `${ok ? "✓ Verified" : "✗ Not verified"}: ${seals.count} commit seal${seals.count === 1 ? "" : "s"}, quorum ${seals.quorum}`,
  );
}

/** @param {import("../router.js").Route} route */
export async function blockView(route) {
  const id = route.parts[1];
  const block = await request(`/blocks/${encodeURIComponent(id)}`);
  return h(
    "section",
    { class: "stack" },
    h("h1", null, `Block #${block.number}`),
    h(
      "nav",
      { class: "pager", "aria-label": "Neighbouring blocks" },
      block.number > 0 ? h("a", { href: href(`/blocks/${block.number - 1}`), rel: "prev" }, "‹ Parent") : null,
      h("a", { href: href(`/blocks/${block.number + 1}`), rel: "next" }, "Child ›"),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "block-facts" },
      h("h2", { id: "block-facts" }, "Header"),
      facts([
        ["Hash", mono(block.hash)],
        [
          "Parent",
          isGenesis(block)
            ? h("span", { class: "muted" }, "none (the first block)")
            : h("a", { href: href(`/blocks/${encodeURIComponent(block.parent_hash)}`), class: "mono break" }, block.parent_hash),
        ],
        [isGenesis(block) ? "Created" : "Sealed", `${time(block.timestamp)} (${block.time})`],
        ["Proposer", isGenesis(block) ? genesisMark() : addressLink(block.proposer, { full: true })],
        ["Gas used", block.gas_used.toLocaleString("en")],
        ["State root", mono(block.state_root)],
        [
          "Verification",
          isGenesis(block)
            ? h("span", { class: "badge", "data-testid": "seal-status" }, "Genesis: built by every node from the genesis document, no seals")
            : sealStatus(block.commit_seals),
        ],
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "block-validators" },
      h("h2", { id: "block-validators" }, `Validators listed (${block.validators.length})`),
      h("ul", { class: "plain" }, block.validators.map((v) => h("li", null, addressLink(v, { full: true })))),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "block-txs" },
      h("h2", { id: "block-txs" }, `Transactions (${block.tx_count})`),
      table(
        `Transactions in block #${block.number}`,
        [
          { title: "#", cell: (row) => String(row.index), numeric: true },
          { title: "Hash", cell: (row) => txLink(row.hash, { full: true }) },
        ],
        block.transactions.map((hash, index) => ({ hash, index })),
        { empty: "This block holds no transactions.", testid: "block-transactions" },
      ),
    ),
  );
}
