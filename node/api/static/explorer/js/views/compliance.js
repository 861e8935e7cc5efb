/**
 * Compliance: the risk service's case queue (`tally bank risk serve`, `/risk/cases`). An
 * analyst or a compliance officer lists the cases by score, opens one (the decision, its
 * reasons, every step as a note), assigns, notes and escalates it; an officer closes it,
 * which may act on chain (release or reject the payment's hold, flag the account), signed by
 * the service with the compliance key.
 *
 * The page talks to the risk service, not the node: the officer gives its base URL and a bank
 * API key (`risk.js`). Whatever the service refuses (401 unknown key, 403 the role may not,
 * 409 the case is closed or the chain refused) is shown in its own words, in place.
 */

import { addressLink, errorBox, facts, table, txLink } from "../components.js";
import { h, replace } from "../dom.js";
import { time, token } from "../format.js";
import { normalUrl } from "../gateway.js";
import * as risk from "../risk.js";
import { go, href } from "../router.js";

const STATES = ["open", "assigned", "escalated", "closed"];
const RESOLUTIONS = [
  ["release", "Release the hold (the payee is paid)"],
  ["reject", "Reject the hold (the payer is refunded)"],
  ["flag", "Flag the account"],
  ["no_action", "No action"],
];

/** @param {string} state "" for every case not closed */
function settingsForm(state) {
  const saved = risk.load();
  const url = h("input", { id: "c-url", name: "url", type: "url", value: saved?.url ?? "", placeholder: "https://risk.example", required: true, autocomplete: "off", spellcheck: "false" });
  // A saved key is not written back into the field (nor its attributes): left empty, it stays.
  const key = h("input", { id: "c-key", name: "key", type: "password", placeholder: saved ? "(kept for this tab)" : "tbk_…", required: !saved, autocomplete: "off" });
  const filter = h(
    "select",
    { id: "c-state", name: "state" },
    h("option", { value: "", selected: state === "" }, "not closed"),
    STATES.map((s) => h("option", { value: s, selected: state === s }, s)),
  );
  const problem = h("p", { class: "muted", role: "status" });
  return h(
    "form",
    {
      class: "filters",
      "aria-label": "Risk service and queue",
      onsubmit: (event) => {
        event.preventDefault();
        const base = normalUrl(url.value);
        if (!base) {
          problem.textContent = "Enter the risk service's base URL, e.g. https://risk.example:8610.";
          return;
        }
        risk.save({ url: base, key: key.value.trim() || saved?.key || "" });
        go("/compliance", { state: filter.value });
      },
    },
    h("div", null, h("label", { for: "c-url" }, "Risk service URL"), url),
    h("div", null, h("label", { for: "c-key" }, "Bank API key (analyst or compliance)"), key),
    h("div", null, h("label", { for: "c-state" }, "Cases"), filter),
    h("button", { type: "submit" }, "Show"),
    saved
      ? h("button", { type: "button", onclick: () => { risk.clear(); go("/compliance"); } }, "Forget key")
      : null,
    problem,
  );
}

/** @param {any[]} reasons the decision's reasons: {rule, score, detail} */
const ruleNames = (reasons) => reasons.map((r) => r.rule).join(", ") || "–";

/** @param {any[]} cases the service's queue, highest score first */
function queueView(cases) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "case-queue" },
    h("h2", { id: "case-queue" }, "Case queue"),
    table(
      "Cases, highest score first",
      [
        { title: "Case", cell: (c) => h("a", { href: href(`/compliance/${c.id}`) }, `#${c.id}`) },
        { title: "State", cell: (c) => h("span", { class: "badge" }, c.state) },
        { title: "Score", cell: (c) => String(c.decision.score), numeric: true },
        { title: "Account", cell: (c) => addressLink(c.account) },
        { title: "Amount", cell: (c) => token(c.decision.amount), numeric: true },
        { title: "Reasons", cell: (c) => ruleNames(c.decision.reasons) },
        { title: "Held", cell: (c) => (c.decision.hold_id === null ? "no" : "yes") },
        { title: "Assignee", cell: (c) => c.assignee ?? "–" },
      ],
      cases,
      { testid: "case-queue", empty: "No cases in this state." },
    ),
  );
}

/**
 * One action on the case: a form whose submit POSTs `body()` to `/risk/cases/{id}/{action}`,
 * then shows the case again; a refusal is shown under the form, the case left as it was.
 * @param {risk.RiskService} service
 * @param {any} item the case
 * @param {string} action assign | note | escalate | close
 * @param {string} label the button's text
 * @param {unknown[]} fields the form's labelled inputs
 * @param {() => unknown} body
 */
function actionForm(service, item, action, label, fields, body) {
  const problem = h("div", { class: "form-problem", "data-testid": `case-${action}-problem` });
  const button = h("button", { type: "submit" }, label);
  return h(
    "form",
    {
      class: "filters",
      "aria-label": label,
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        replace(problem, h("p", { class: "muted", role: "status" }, "Sending…"));
        try {
          await risk.call(service, `/risk/cases/${item.id}/${action}`, { body: body() });
          go(`/compliance/${item.id}`);
        } catch (error) {
          replace(problem, errorBox(error));
          button.disabled = false;
        }
      },
    },
    fields,
    button,
    problem,
  );
}

/** A labelled input inside a form row. */
function field(id, text, control) {
  return h("div", null, h("label", { for: id }, text), control);
}

/** @param {risk.RiskService} service @param {any} item */
function actions(service, item) {
  const assignee = h("input", { id: "a-assignee", name: "assignee", placeholder: "(me)", maxlength: 64, autocomplete: "off" });
  const note = h("textarea", { id: "a-note", name: "note", rows: 2, maxlength: 2000, required: true });
  const why = h("input", { id: "a-escalate", name: "escalate", maxlength: 2000, autocomplete: "off" });
  const resolution = h("select", { id: "a-resolution", name: "resolution" }, RESOLUTIONS.map(([value, text]) => h("option", { value }, text)));
  const reason = h("input", { id: "a-reason", name: "reason", maxlength: 200, autocomplete: "off" });
  return h(
    "section",
    { class: "card stack", "aria-labelledby": "case-actions" },
    h("h2", { id: "case-actions" }, "Work the case"),
    actionForm(service, item, "assign", "Assign", [field("a-assignee", "Assign to", assignee)],
      () => ({ assignee: assignee.value.trim() || null })),
    actionForm(service, item, "note", "Add note", [field("a-note", "Note", note)],
      () => ({ text: note.value })),
    actionForm(service, item, "escalate", "Escalate", [field("a-escalate", "Why escalate", why)],
      () => ({ text: why.value.trim() })),
    actionForm(service, item, "close", "Close case",
      [field("a-resolution", "Resolution", resolution), field("a-reason", "Reason", reason)],
      () => ({ resolution: resolution.value, reason: reason.value.trim() })),
    h("p", { class: "hint" }, "Closing needs the compliance role: the service signs the release, rejection or flag with the compliance key."),
  );
}

/** @param {risk.RiskService} service @param {any} item the case with its notes */
function caseView(service, item) {
  const d = item.decision;
  return [
    h(
      "section",
      { class: "card", "aria-labelledby": "case-title" },
      h("h2", { id: "case-title" }, `Case #${item.id}`),
      facts([
        ["State", h("span", { class: "badge", "data-testid": "case-state" }, item.state)],
        ["Account", addressLink(item.account, { full: true })],
        ["Assignee", h("span", { "data-testid": "case-assignee" }, item.assignee ?? "–")],
        ["Score", h("span", { "data-testid": "case-score" }, String(d.score))],
        ["Outcome", d.outcome],
        ["Payment", txLink(d.tx_hash, { full: true })],
        ["Payer", addressLink(d.payer)],
        ["Payee", addressLink(d.payee)],
        ["Amount", token(d.amount)],
        ["Held on chain", d.hold_id === null ? "no" : `yes (hold ${d.hold_id})`],
        ["Rules version", d.config_version],
        ["Resolution", h("span", { "data-testid": "case-resolution" }, item.resolution ?? "–")],
        ["Resolution transaction", txLink(item.resolution_tx, { full: true })],
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "case-reasons" },
      h("h2", { id: "case-reasons" }, "Reasons"),
      table(
        "Why the payment was scored",
        [
          { title: "Rule", cell: (r) => r.rule },
          { title: "Score", cell: (r) => String(r.score), numeric: true },
          { title: "Detail", cell: (r) => r.detail },
        ],
        d.reasons,
        { testid: "case-reason-list", empty: "No rule fired." },
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "case-notes" },
      h("h2", { id: "case-notes" }, "Notes"),
      table(
        "Every step on the case",
        [
          { title: "When", cell: (n) => time(Math.floor(Date.parse(n.at) / 1000)) },
          { title: "Who", cell: (n) => n.author },
          { title: "Step", cell: (n) => n.action },
          { title: "Text", cell: (n) => n.text },
        ],
        item.notes,
        { testid: "case-note-list" },
      ),
    ),
    item.state === "closed" ? null : actions(service, item),
  ];
}

/** @param {import("../router.js").Route} route */
export async function complianceView(route) {
  const id = route.parts[1];
  const state = STATES.includes(route.query.get("state") ?? "") ? route.query.get("state") : "";
  const saved = risk.load();
  let body;
  if (id !== undefined && !/^\d+$/.test(id)) {
    body = errorBox(new Error("A case is named by its number, e.g. #/compliance/12."));
  } else if (!saved) {
    body = h("p", { class: "muted" }, "Enter the risk service's URL and a bank API key (analyst or compliance role) to see its cases.");
  } else {
    try {
      body = id === undefined
        ? queueView(await risk.call(saved, "/risk/cases", { params: { state, limit: "200" } }))
        : [h("p", null, h("a", { href: href("/compliance") }, "‹ Back to the queue")),
           caseView(saved, await risk.call(saved, `/risk/cases/${id}`))];
    } catch (error) {
      body = errorBox(error);
    }
  }
  return h(
    "section",
    { class: "stack", "data-testid": "compliance" },
    h("h1", null, "Compliance: cases"),
    settingsForm(state),
    body,
  );
}
