/**
 * The bank gateway (`tally bank gateway`) as the operations page calls it: another process and
 * another origin than the node, with its own operations API keys.
 *
 * Its base URL and key are kept in sessionStorage like the node's credential (`session.js`):
 * they go with the tab. The key travels only in the Authorization header, never in a URL
 * (CSV downloads too: fetched, then saved from a blob). The gateway must list the explorer's
 * origin in `--cors-origins`, and the node the gateway's in `--explorer-connect`.
 */

import { ApiError, errorOf } from "./api.js";

const KEY = "tally.gateway";

/**
 * @typedef {object} Gateway
 * @property {string} url base URL, e.g. "https://gateway.bank.example"
 * @property {string} key an operations API key of the gateway ("tbk_…")
 */

/** @returns {Gateway|null} */
export function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    return saved && typeof saved.url === "string" && typeof saved.key === "string" ? saved : null;
  } catch {
    return null;
  }
}

/** @param {Gateway} gateway */
export function save(gateway) {
  sessionStorage.setItem(KEY, JSON.stringify(gateway));
}

export function clear() {
  sessionStorage.removeItem(KEY);
}

/**
 * The base URL as an origin-rooted http(s) URL without a trailing slash, or null.
 * @param {string} text
 */
export function normalUrl(text) {
  let url;
  try {
    url = new URL(text.trim());
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return url.href.replace(/\/+$/, "");
}

/**
 * GET a gateway path with the key; failures become ApiError with the gateway's own message.
 * @param {Gateway} gateway
 * @param {string} path e.g. "/reconciliation/2026-12-03"
 * @param {Record<string, string>} [params]
 * @returns {Promise<Response>}
 */
export async function send(gateway, path, params = {}) {
  const url = new URL(gateway.url + path);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  let response;
  try {
    response = await fetch(url, {
      headers: { Accept: "application/json", Authorization: `Bearer ${gateway.key}` },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `The gateway at ${gateway.url} did not answer, or this page may not call it (the gateway's --cors-origins and the node's --explorer-connect must name each other) (${err.message}).`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}
