/**
 * Operations: the bank gateway's daily reconciliation (`GET /reconciliation/{day}` of
 * `tally bank gateway`): the card rail's settlement file, the gateway's records and the chain's
 * mints and burns of a UTC day, their matched totals and each break by kind and reference.
 *
 * The page talks to the gateway, not the node: the operator gives its base URL and an
 * operations API key of the gateway (`gateway.js`). Whatever the gateway refuses is shown in
 * its own words, under the form, so the key or the day can be corrected in place.
 */

import { errorBox, facts, table } from "../components.js";
import { h } from "../dom.js";
import { units, yesNo } from "../format.js";
import * as gateway from "../gateway.js";
import { go } from "../router.js";

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Amounts are the gateway's minor units (cents). */
const money = (value) => (value === null || value === undefined ? "–" : units(value, 2));

/** Yesterday, UTC: the day a morning's report is about. */
function yesterday() {
  return new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
}

/** @param {string} day */
function settingsForm(day) {
  const saved = gateway.load();
  const url = h("input", { id: "r-url", name: "url", type: "url", value: saved?.url ?? "", placeholder: "https://gateway.example", required: true, autocomplete: "off", spellcheck: "false" });
  // A saved key is not written back into the field (nor its attributes): left empty, it stays.
  const key = h("input", { id: "r-key", name: "key", type: "password", placeholder: saved ? "(kept for this tab)" : "tbk_…", required: !saved, autocomplete: "off" });
  const date = h("input", { id: "r-day", name: "day", type: "date", value: day, required: true });
  const problem = h("p", { class: "muted", role: "status" });
  return h(
    "form",
    {
      class: "filters",
      "aria-label": "Gateway and day",
      onsubmit: (event) => {
        event.preventDefault();
        const base = gateway.normalUrl(url.value);
        if (!base) {
          problem.textContent = "Enter the gateway's base URL, e.g. https://gateway.example:8600.";
          return;
        }
        gateway.save({ url: base, key: key.value.trim() || saved?.key || "" });
        go(`/reconciliation/${date.value}`);
      },
    },
    h("div", null, h("label", { for: "r-url" }, "Gateway URL"), url),
    h("div", null, h("label", { for: "r-key" }, "Operations API key of the gateway"), key),
    h("div", null, h("label", { for: "r-day" }, "Day (UTC)"), date),
    h("button", { type: "submit" }, "Show"),
    saved
      ? h("button", { type: "button", onclick: () => { gateway.clear(); go(`/reconciliation/${day}`); } }, "Forget key")
      : null,
    problem,
  );
}

/**
 * A link saving the day's CSV: fetched with the key, then handed over as a blob.
 * @param {import("../gateway.js").Gateway} saved
 * @param {string} day
 */
function csvLink(saved, day) {
  const status = h("span", { class: "download-status", role: "status" });
  const link = h(
    "a",
    {
      href: "#",
      class: "download",
      "data-testid": "reconciliation-csv",
      onclick: async (event) => {
        event.preventDefault();
        status.textContent = "Preparing…";
        try {
          const response = await gateway.send(saved, `/reconciliation/${day}`, { format: "csv" });
          const url = URL.createObjectURL(await response.blob());
          const anchor = h("a", { href: url, download: `reconciliation-${day}.csv` });
          document.body.append(anchor);
          anchor.click();
          anchor.remove();
          setTimeout(() => URL.revokeObjectURL(url), 60_000);
          status.textContent = "";
        } catch (error) {
          status.replaceChildren(errorBox(error));
        }
      },
    },
    "Download CSV",
  );
  return h("span", { class: "download-wrap" }, link, status);
}

/** @param {any} report the gateway's JSON report */
function reportView(report, saved) {
  return [
    h(
      "section",
      { class: "card", "aria-labelledby": "recon-totals" },
      h("h2", { id: "recon-totals" }, `Matched on ${report.day}`),
      facts([
        ["Settlement file", h("span", { "data-testid": "recon-file" }, yesNo(report.settlement_file))],
        ["Top-ups matched", h("span", { "data-testid": "recon-topups" }, String(report.matched_topups))],
        ["Top-up total", h("span", { "data-testid": "recon-topup-total" }, money(report.matched_topup_total))],
        ["Withdrawals matched", h("span", { "data-testid": "recon-withdrawals" }, String(report.matched_withdrawals))],
        ["Withdrawal total", h("span", { "data-testid": "recon-withdrawal-total" }, money(report.matched_withdrawal_total))],
        ["Breaks", h("span", { "data-testid": "recon-break-count" }, String(report.breaks.length))],
      ]),
      csvLink(saved, report.day),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "recon-breaks" },
      h("h2", { id: "recon-breaks" }, "Breaks"),
      table(
        "Breaks by kind and reference",
        [
          { title: "Kind", cell: (b) => b.kind },
          { title: "Reference", cell: (b) => h("span", { class: "mono break" }, b.reference) },
          { title: "Rail", cell: (b) => money(b.rail_amount), numeric: true },
          { title: "Gateway", cell: (b) => money(b.gateway_amount), numeric: true },
          { title: "Chain", cell: (b) => money(b.chain_amount), numeric: true },
        ],
        report.breaks,
        { testid: "recon-breaks", empty: "No breaks: every movement lines up." },
      ),
    ),
  ];
}

/** @param {import("../router.js").Route} route */
export async function reconciliationView(route) {
  const day = route.parts[1] ?? yesterday();
  const saved = gateway.load();
  let body = null;
  if (!DAY.test(day)) {
    body = errorBox(new Error("The day must be written YYYY-MM-DD."));
  } else if (!saved) {
    body = h("p", { class: "muted" }, "Enter the gateway's URL and an operations API key of the gateway to see its report.");
  } else if (route.parts.length === 2) {
    try {
      const report = await (await gateway.send(saved, `/reconciliation/${day}`)).json();
      body = reportView(report, saved);
    } catch (error) {
      body = errorBox(error);
    }
  }
  return h(
    "section",
    { class: "stack", "data-testid": "reconciliation" },
    h("h1", null, "Operations: reconciliation"),
    settingsForm(DAY.test(day) ? day : yesterday()),
    body,
  );
}
