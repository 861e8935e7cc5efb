/**
 * The explorer's entry point: routes hash paths to views, renders them into <main>, keeps the
 * header's session box and search form working.
 *
 * Every view is an async function of the route returning a DOM node; whatever it throws (the
 * API's structured errors included) is shown in the page, never swallowed.
 */

import { request } from "./api.js";
import { errorBox, loading } from "./components.js";
import { h, replace } from "./dom.js";
import { isAddress, isHash } from "./format.js";
import { current, go, href } from "./router.js";
import * as session from "./session.js";
import { accountView } from "./views/account.js";
import { blocksView, blockView } from "./views/blocks.js";
import { complianceView } from "./views/compliance.js";
import { dashboardView } from "./views/dashboard.js";
import { reconciliationView } from "./views/reconciliation.js";
import { settlementsView, settlementView } from "./views/settlements.js";
import { signInView } from "./views/signin.js";
import { transactionView } from "./views/transaction.js";
import { validatorsView } from "./views/validators.js";
import { walletView } from "./views/wallet.js";

/** [first path segment, number of segments, view, page title] */
const ROUTES = [
  ["", 0, dashboardView, "Dashboard"],
  ["signin", 1, signInView, "Sign in"],
  ["blocks", 1, blocksView, "Blocks"],
  ["blocks", 2, blockView, "Block"],
  ["tx", 2, transactionView, "Transaction"],
  ["accounts", 2, accountView, "Account"],
  ["settlements", 1, settlementsView, "Settlements"],
  ["settlements", 3, settlementView, "Settlement"],
  ["validators", 1, validatorsView, "Validators"],
  ["wallet", 1, walletView, "Wallet"],
  ["reconciliation", 1, reconciliationView, "Operations: reconciliation"],
  ["reconciliation", 2, reconciliationView, "Operations: reconciliation"],
  ["compliance", 1, complianceView, "Compliance: cases"],
  ["compliance", 2, complianceView, "Compliance: case"],
];

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
let renderCount = 0;

function notFound() {
  return h("section", null, h("h1", null, "Not found"), h("p", null, "No such page. ", h("a", { href: href("/") }, "Back to the dashboard.")));
}

/** Render the view the hash names; a newer navigation wins over a slower older one. */
async function render() {
  const route = current();
  const ticket = ++renderCount;
  const [, , view, title] = ROUTES.find(([first, count]) => (route.parts[0] ?? "") === first && route.parts.length === count) ?? [null, 0, notFound, "Not found"];
  document.title = `${title} · Tally explorer`;
  markCurrentNav(route.parts[0] ?? "");
  main.setAttribute("aria-busy", "true");
  replace(main, loading());
  let content;
  try {
    content = await view(route);
  } catch (error) {
    content = h("section", { class: "stack" }, h("h1", null, title), errorBox(error), signInHint(error));
  }
  if (ticket !== renderCount) return;
  replace(main, content);
  main.removeAttribute("aria-busy");
  main.dataset.rendered = window.location.hash || "#/";
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

/** After a 401, point to the sign-in page. */
function signInHint(error) {
  return error?.status === 401 ? h("p", null, h("a", { href: href("/signin") }, "Sign in"), " to see this.") : null;
}

function markCurrentNav(section) {
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href")?.replace(/^#\/?/, "") ?? "";
    if (target === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function renderSession() {
  const box = /** @type {HTMLElement} */ (document.getElementById("session"));
  const me = session.load();
  // Customers read only their own accounts: chain-wide pages would only answer 403.
  for (const item of document.querySelectorAll("[data-hide-for]")) {
    /** @type {HTMLElement} */ (item).hidden = item.getAttribute("data-hide-for") === me?.role;
  }
  if (!me) {
    replace(box, h("a", { href: href("/signin"), class: "button" }, "Sign in"));
    return;
  }
  replace(
    box,
    h("span", { class: "who", "data-testid": "who" }, `${me.role}${me.label ? ` · ${me.label}` : ""}`),
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          session.clear();
          go("/");
        },
      },
      "Sign out",
    ),
  );
}

/** Search box: a block number, a 32-byte hash (transaction, else block) or an address. */
async function search(event) {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (document.getElementById("search-input"));
  const text = input.value.trim();
  if (/^\d+$/.test(text)) {
    go(`/blocks/${text}`);
  } else if (isAddress(text)) {
    go(`/accounts/${text}`);
  } else if (isHash(text)) {
    try {
      await request(`/transactions/${text}`);
      go(`/tx/${text}`);
    } catch (error) {
      go(error?.status === 404 ? `/blocks/${text}` : `/tx/${text}`);
    }
  } else {
    replace(main, h("section", { class: "stack" }, h("h1", null, "Search"), errorBox(new Error("Enter a block number, a 0x transaction or block hash (64 hex digits) or a 0x address (40 hex digits)."))));
    return;
  }
  input.value = "";
}

document.getElementById("search")?.addEventListener("submit", search);
document.getElementById("skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", render);
window.addEventListener("tally:session", () => {
  renderSession();
});
renderSession();
render();
