/**
 * Hash-based routing: "#/blocks/12?cursor=…" so any view can be bookmarked or shared and the
 * page needs no server-side routes beyond its static files.
 */

/**
 * @typedef {object} Route
 * @property {string} path e.g. "/blocks/12"
 * @property {string[]} parts decoded path segments, e.g. ["blocks", "12"]
 * @property {URLSearchParams} query
 */

/** @returns {Route} */
export function current() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = raw.split("?", 2);
  const path = pathPart.startsWith("/") ? pathPart : `/${pathPart}`;
  const parts = path
    .split("/")
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
  return { path, parts, query: new URLSearchParams(queryPart) };
}

/**
 * A hash link; path segments must already be safe (numbers, hex) or encoded by the caller.
 * @param {string} path
 * @param {Record<string, unknown>} [params] empty values are left out
 */
export function href(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

/**
 * Navigate; going to the page already shown renders it again (e.g. after signing out).
 * @param {string} path
 * @param {Record<string, unknown>} [params]
 */
export function go(path, params) {
  const target = href(path, params);
  if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else window.location.hash = target;
}
