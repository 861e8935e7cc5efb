/**
 * The node's REST API (/api/v1) as the page uses it.
 *
 * Every failure becomes an `ApiError` carrying the API's structured error (`code`, `message`),
 * so views can show the node's own words instead of failing silently; a 401 on a stored
 * credential means it expired or was revoked, and the session is dropped.
 */

import * as session from "./session.js";

export const BASE = "/api/v1";

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the node could not be reached)
   * @param {string} code the API's machine code, e.g. "not_found"
   * @param {string} message the API's human message
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * Build an API URL with the given query parameters (empty values left out).
 * @param {string} path below /api/v1, e.g. "/blocks"
 * @param {Record<string, unknown>} [params]
 * @returns {URL}
 */
export function apiUrl(path, params = {}) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  return url;
}

/**
 * @param {string|null} [credential] overrides the stored one (used while signing in)
 * @returns {Record<string, string>}
 */
function authHeaders(credential) {
  const token = credential ?? session.load()?.credential;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * Turn an error response into an ApiError, whatever shape its body has.
 * @param {Response} response
 * @returns {Promise<ApiError>}
 */
export async function errorOf(response) {
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const error = body?.error;
  if (error && typeof error === "object") {
    return new ApiError(response.status, String(error.code ?? "error"), String(error.message ?? ""));
  }
  if (Array.isArray(body?.detail)) {
    const message = body.detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`).join("; ");
    return new ApiError(response.status, "invalid_request", message);
  }
  const message = typeof body?.detail === "string" ? body.detail : text || response.statusText;
  return new ApiError(response.status, `http_${response.status}`, message);
}

/**
 * Call the API and return the parsed JSON body.
 * @param {string} path below /api/v1
 * @param {{method?: string, params?: Record<string, unknown>, body?: unknown,
 *   credential?: string|null}} [options]
 * @returns {Promise<any>}
 */
export async function request(path, options = {}) {
  const response = await send(path, options);
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Call the API and return the raw successful response (for downloads).
 * @param {string} path
 * @param {{method?: string, params?: Record<string, unknown>, body?: unknown,
 *   credential?: string|null}} [options]
 * @returns {Promise<Response>}
 */
export async function send(path, { method = "GET", params, body, credential } = {}) {
  const headers = { Accept: "application/json", ...authHeaders(credential) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `The node did not answer (${err.message}).`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && credential === undefined && session.load()) session.clear();
    throw error;
  }
  return response;
}
