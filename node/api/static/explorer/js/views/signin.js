/**
 * Sign in: paste an API key, or Sign-In with Ethereum when a wallet is injected.
 * Either way the credential is checked with GET /me before it is kept.
 */

import { request } from "../api.js";
import { errorBox, facts } from "../components.js";
import { h } from "../dom.js";
import { go } from "../router.js";
import * as session from "../session.js";
import * as siwe from "../siwe.js";

/** Where a freshly signed-in user goes: customers to their wallet, others to the dashboard. */
function landing(role) {
  go(role === "customer" ? "/wallet" : "/");
}

/**
 * Check a credential against the node and keep it.
 * @param {string} credential
 * @param {"api-key"|"ethereum"} method
 * @param {number|null} expiresAt
 */
async function keep(credential, method, expiresAt) {
  const me = await request("/me", { credential });
  session.save({
    credential,
    method,
    role: me.role,
    label: me.label ?? null,
    addresses: me.addresses ?? [],
    expiresAt,
  });
  return me;
}

/** @param {number|string|null|undefined} value unix seconds or an ISO time */
function toUnix(value) {
  if (value === null || value === undefined) return null;
  const number = Number(value);
  if (Number.isFinite(number)) return number;
  const parsed = Date.parse(String(value));
  return Number.isNaN(parsed) ? null : Math.floor(parsed / 1000);
}

export async function signInView() {
  const current = session.load();
  const status = h("div", { "aria-live": "polite" });
  const keyInput = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "tk_…",
  });
  const keyForm = h(
    "form",
    {
      class: "card stack",
      "aria-labelledby": "key-heading",
      onsubmit: async (event) => {
        event.preventDefault();
        const key = keyInput.value.trim();
        if (!key) return;
        status.replaceChildren(h("p", { class: "muted" }, "Checking the key…"));
        try {
          const me = await keep(key, "api-key", null);
          keyInput.value = "";
          landing(me.role);
        } catch (error) {
          status.replaceChildren(errorBox(error));
        }
      },
    },
    h("h2", { id: "key-heading" }, "With an API key"),
    h("label", { for: "api-key" }, "API key"),
    keyInput,
    h("p", { class: "hint" }, "Kept in this tab only (sessionStorage) and sent as a bearer token."),
    h("button", { type: "submit" }, "Sign in"),
  );

  const ethereum = siwe.available()
    ? h(
        "button",
        {
          type: "button",
          onclick: async () => {
            status.replaceChildren(h("p", { class: "muted" }, "Waiting for the wallet…"));
            try {
              const answer = await siwe.signIn();
              const me = await keep(answer.token, "ethereum", toUnix(answer.expires_at));
              landing(me.role);
            } catch (error) {
              status.replaceChildren(errorBox(error));
            }
          },
        },
        "Sign in with Ethereum",
      )
    : h("p", { class: "muted" }, "No Ethereum wallet found in this browser (window.ethereum).");

  return h(
    "section",
    { class: "stack" },
    h("h1", null, "Sign in"),
    current
      ? h(
          "div",
          { class: "card" },
          h("p", null, "You are signed in."),
          facts([
            ["Role", current.role],
            ["Label", current.label ?? "–"],
            ["Addresses", current.addresses.join(", ") || "–"],
          ]),
          h("button", { type: "button", onclick: () => session.clear() }, "Sign out"),
        )
      : null,
    status,
    h("div", { class: "grid-2" }, keyForm, h("div", { class: "card stack" }, h("h2", null, "Ethereum wallet"),
      h("p", null, "Sign a one-time message (EIP-4361) with your wallet; the node gives a 15-minute token for that address."),
      ethereum)),
  );
}
