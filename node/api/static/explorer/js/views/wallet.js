/**
 * The customer's wallet: balance, recent history, and a payment request (EIP-681 URI and QR
 * code, drawn by the node) that someone else's wallet can scan to pay into this account.
 */

import { request } from "../api.js";
import { errorBox, facts, pager, table } from "../components.js";
import { h } from "../dom.js";
import { ether, parseUnits, token, WALLET_TOKEN, yesNo } from "../format.js";
import { go, href } from "../router.js";
import * as session from "../session.js";
import { safeSvg } from "../svg.js";
import { COLUMNS, TITLES, WALLET_TRANSFER_COLUMNS } from "./history.js";

const TABS = ["transfers", "transactions", "holds"];

/** @param {string} address the account to be paid */
function paymentRequestForm(address) {
  const amount = h("input", { id: "pr-amount", name: "amount", inputmode: "decimal", required: true, placeholder: "12.50", autocomplete: "off" });
  const memo = h("input", { id: "pr-memo", name: "memo", maxlength: 140, placeholder: "What it is for (shown beside the code)", autocomplete: "off" });
  const result = h("div", { class: "qr-result", "aria-live": "polite", "data-testid": "payment-request" });
  const form = h(
    "form",
    {
      class: "stack",
      "aria-labelledby": "pr-heading",
      onsubmit: async (event) => {
        event.preventDefault();
        const units = parseUnits(amount.value);
        if (units === null) {
          result.replaceChildren(errorBox(new Error(`Enter an amount like 12.50 (at most ${WALLET_TOKEN.decimals} decimals).`)));
          amount.setAttribute("aria-invalid", "true");
          return;
        }
        amount.removeAttribute("aria-invalid");
        result.replaceChildren(h("p", { class: "muted" }, "Drawing the code…"));
        try {
          const answer = await request("/payment-requests", {
            params: { to: address, amount: units.toString(), token: WALLET_TOKEN.address, memo: memo.value.trim() },
          });
          result.replaceChildren(
            h(
              "figure",
              { class: "qr" },
              safeSvg(answer.qr_svg, `QR code: pay ${token(units)} to ${address}`),
              h(
                "figcaption",
                null,
                h("strong", null, `Pay ${token(units)}`),
                answer.memo ? h("span", null, `Memo: ${answer.memo}`) : null,
                h("code", { class: "mono break", "data-testid": "payment-uri" }, answer.uri),
                h(
                  "button",
                  {
                    type: "button",
                    onclick: async (e) => {
                      const button = /** @type {HTMLButtonElement} */ (e.currentTarget);
                      try {
                        await navigator.clipboard.writeText(answer.uri);
                        button.textContent = "Copied";
                      } catch {
                        button.textContent = "Copy failed: select the text";
                      }
                    },
                  },
                  "Copy link",
                ),
              ),
            ),
          );
        } catch (error) {
          result.replaceChildren(errorBox(error));
        }
      },
    },
    h("h2", { id: "pr-heading" }, "Request a payment"),
    h("div", null, h("label", { for: "pr-amount" }, `Amount (${WALLET_TOKEN.symbol})`), amount),
    h("div", null, h("label", { for: "pr-memo" }, "Memo (optional)"), memo),
    h("button", { type: "submit" }, "Create QR code"),
  );
  return h("section", { class: "card stack" }, form, result);
}

/** @param {import("../router.js").Route} route */
export async function walletView(route) {
  const me = session.load();
  if (!me) {
    return h("section", { class: "stack" }, h("h1", null, "Wallet"), h("p", null, h("a", { href: href("/signin") }, "Sign in"), " with your wallet's key or your Ethereum account."));
  }
  const wanted = route.query.get("address");
  const address = wanted && (me.addresses.includes(wanted) || ["admin", "auditor"].includes(me.role)) ? wanted : me.addresses[0];
  if (!address) {
    return h(
      "section",
      { class: "stack" },
      h("h1", null, "Wallet"),
      h("p", null, `This ${me.role} credential acts for no address; open an account from the search box instead.`),
    );
  }
  const tab = TABS.includes(route.query.get("tab")) ? route.query.get("tab") : "transfers";
  const cursor = route.query.get("cursor");
  const limit = route.query.get("limit") ?? 10;
  const path = `/accounts/${encodeURIComponent(address)}`;
  const [account, history] = await Promise.all([
    request(path),
    request(`${path}/${tab}`, { params: { cursor, limit } }),
  ]);
  const pageHref = (c) => href("/wallet", { address, tab, limit: route.query.get("limit"), cursor: c });
  const chooser =
    me.addresses.length > 1
      ? h(
          "form",
          { class: "filters", "aria-label": "Choose an account" },
          h("label", { for: "w-address" }, "Account"),
          h(
            "select",
            { id: "w-address", onchange: (event) => go("/wallet", { address: event.target.value }) },
            me.addresses.map((a) => h("option", { value: a, selected: a === address }, a)),
          ),
        )
      : null;
  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Wallet"),
    chooser,
    h(
      "section",
      { class: "card balance", "aria-labelledby": "balance-heading" },
      h("h2", { id: "balance-heading" }, "Balance"),
      h("p", { class: "big", "data-testid": "wallet-balance" }, account.token_balance === null ? "–" : token(account.token_balance)),
      facts([
        ["Account", h("span", { class: "mono break" }, account.address)],
        ["Points", account.points ?? "–"],
        ["KYC tier", account.kyc_tier ?? "–"],
        ["Frozen", account.frozen === null ? "–" : yesNo(account.frozen)],
        ["Gas balance", ether(account.balance)],
      ]),
    ),
    paymentRequestForm(account.address),
    h(
      "section",
      { class: "card stack", "aria-labelledby": "wallet-history" },
      h("h2", { id: "wallet-history" }, "History"),
      h(
        "nav",
        { class: "tabs", "aria-label": "History kind" },
        TABS.map((kind) => h("a", { href: href("/wallet", { address, tab: kind }), "aria-current": kind === tab ? "page" : null }, TITLES[kind])),
      ),
      table(`${TITLES[tab]}, newest first`, tab === "transfers" ? WALLET_TRANSFER_COLUMNS : COLUMNS[tab], history.items, { testid: "wallet-history", empty: "Nothing yet." }),
      pager(pageHref, cursor, history.next_cursor),
    ),
  );
}
