/**
 * The bank's risk service (`tally bank risk serve`) as the compliance page calls it: another
 * process and another origin than the node, with the bank's own API keys (analyst or
 * compliance role).
 *
 * Its base URL and key are kept in sessionStorage, like the gateway's (`gateway.js`): they go
 * with the tab. The key travels only in the Authorization header, never in a URL. The service
 * must list the explorer's origin in `--cors-origins`, and the node the service's in
 * `--explorer-connect`.
 */

import { ApiError, errorOf } from "./api.js";

const KEY = "tally.risk";

/**
 * @typedef {object} RiskService
 * @property {string} url base URL, e.g. "https://risk.bank.example"
 * @property {string} key a bank API key ("tbk_…") of the analyst or compliance role
 */

/** @returns {RiskService|null} */
export function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    return saved && typeof saved.url === "string" && typeof saved.key === "string" ? saved : null;
  } catch {
    return null;
  }
}

/** @param {RiskService} service */
export function save(service) {
  sessionStorage.setItem(KEY, JSON.stringify(service));
}

export function clear() {
  sessionStorage.removeItem(KEY);
}

/**
 * Call the service and return its JSON; failures become ApiError with the service's message.
 * @param {RiskService} service
 * @param {string} path e.g. "/risk/cases/3/note"
 * @param {{params?: Record<string, string>, body?: unknown}} [options] a body makes it a POST
 * @returns {Promise<any>}
 */
export async function call(service, path, { params = {}, body } = {}) {
  const url = new URL(service.url + path);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
  const headers = { Accept: "application/json", Authorization: `Bearer ${service.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `The risk service at ${service.url} did not answer, or this page may not call it (its --cors-origins and the node's --explorer-connect must name each other) (${err.message}).`);
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}
