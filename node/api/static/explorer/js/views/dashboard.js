/**
 * Dashboard: the head and chain id (public), then, for a signed-in reader, the validator set
 * and the latest blocks.
 */

import { request } from "../api.js";
import { addressLink, blockLink, errorBox, facts, mono, table } from "../components.js";
import { h } from "../dom.js";
import { short, time } from "../format.js";
import { href } from "../router.js";
import * as session from "../session.js";

export async function dashboardView() {
  const status = await request("/status", { credential: null });
  const parts = [
    h("h1", null, "Dashboard"),
    h(
      "section",
      { class: "card", "aria-labelledby": "head-heading", "data-testid": "head" },
      h("h2", { id: "head-heading" }, "Chain head"),
      facts([
        ["Chain id", String(status.chain_id)],
        ["Head block", blockLink(status.head.number)],
        ["Head hash", mono(status.head.hash)],
        ["Sealed", time(status.head.timestamp)],
        ["Peers", String(status.peers)],
        ["Syncing", status.syncing ? "yes" : "no (in step with the network)"],
      ]),
    ),
  ];
  const me = session.load();
  if (!me) {
    parts.push(h("p", null, h("a", { href: href("/signin") }, "Sign in"), " to see blocks, accounts and settlements."));
    return h("section", { class: "stack" }, parts);
  }
  if (me.role === "customer") {
    parts.push(h("p", null, "Your accounts are in your ", h("a", { href: href("/wallet") }, "wallet"), "."));
    return h("section", { class: "stack" }, parts);
  }
  const [validators, blocks] = await Promise.allSettled([
    request("/validators"),
    request("/blocks", { params: { limit: 10 } }),
  ]);
  parts.push(
    h(
      "div",
      { class: "grid-2" },
      h(
        "section",
        { class: "card", "aria-labelledby": "validators-heading" },
        h("h2", { id: "validators-heading" }, "Validator set"),
        validators.status === "fulfilled"
          ? [
              h("p", { class: "muted" }, `As listed in block #${validators.value.block.number}.`),
              h("ul", { class: "plain" }, validators.value.validators.map((v) => h("li", null, addressLink(v, { full: true })))),
            ]
          : errorBox(validators.reason),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "latest-heading" },
        h("h2", { id: "latest-heading" }, "Latest blocks"),
        blocks.status === "fulfilled"
          ? [
              table(
                "The ten newest blocks",
                [
                  { title: "Block", cell: (b) => blockLink(b.number) },
                  { title: "Hash", cell: (b) => h("span", { class: "mono", title: b.hash }, short(b.hash)) },
                  { title: "Txs", cell: (b) => String(b.tx_count), numeric: true },
                  { title: "Sealed", cell: (b) => time(b.timestamp) },
                ],
                blocks.value.items,
                { testid: "latest-blocks" },
              ),
              h("p", null, h("a", { href: href("/blocks") }, "All blocks ›")),
            ]
          : errorBox(blocks.reason),
      ),
    ),
  );
  return h("section", { class: "stack" }, parts);
}
