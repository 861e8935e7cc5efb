/** The validator set listed in a block (latest by default, or any earlier block). */

import { request } from "../api.js";
import { addressLink, blockLink, facts, mono, table } from "../components.js";
import { h } from "../dom.js";
import { time } from "../format.js";
import { go } from "../router.js";

/** @param {import("../router.js").Route} route */
export async function validatorsView(route) {
  const block = route.query.get("block") ?? "latest";
  const answer = await request("/validators", { params: { block } });
  const input = h("input", { id: "v-block", name: "block", inputmode: "numeric", value: block === "latest" ? "" : block, placeholder: "latest" });
  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Validators"),
    h(
      "form",
      {
        class: "filters",
        "aria-label": "Choose a block",
        onsubmit: (event) => {
          event.preventDefault();
          go("/validators", { block: input.value.trim() });
        },
      },
      h("div", null, h("label", { for: "v-block" }, "At block"), input),
      h("button", { type: "submit" }, "Show"),
    ),
    h(
      "section",
      { class: "card" },
      facts([
        ["Block", blockLink(answer.block.number)],
        ["Hash", mono(answer.block.hash)],
        ["Sealed", time(answer.block.timestamp)],
        ["Validators", String(answer.validators.length)],
      ]),
      table(
        `Validators listed in block #${answer.block.number}`,
        [
          { title: "#", cell: (v) => String(v.index + 1), numeric: true },
          { title: "Address", cell: (v) => addressLink(v.address, { full: true }) },
        ],
        answer.validators.map((address, index) => ({ address, index })),
        { testid: "validators" },
      ),
    ),
  );
}
