/**
 * Pieces every view is built from: links to chain objects, tables with headers, definition
 * lists, cursor pagers, error boxes and authenticated downloads.
 */

import { ApiError, send } from "./api.js";
import { h } from "./dom.js";
import { short } from "./format.js";
import { href } from "./router.js";

/** @param {string|null|undefined} address */
export function addressLink(address, { full = false } = {}) {
  if (!address) return "–";
  return h("a", { href: href(`/accounts/${encodeURIComponent(address)}`), class: "mono", title: address }, full ? address : short(address));
}

/** @param {string|null|undefined} hash */
export function txLink(hash, { full = false } = {}) {
  if (!hash) return "–";
  return h("a", { href: href(`/tx/${encodeURIComponent(hash)}`), class: "mono", title: hash }, full ? hash : short(hash));
}

/** @param {number|string|null|undefined} number */
export function blockLink(number) {
  if (number === null || number === undefined) return "–";
  return h("a", { href: href(`/blocks/${encodeURIComponent(number)}`) }, `#${number}`);
}

/** A value shown in full in monospace, e.g. a hash. */
export function mono(value) {
  return h("span", { class: "mono break" }, value ?? "–");
}

/**
 * A definition list of [term, value] rows.
 * @param {Array<[string, unknown]>} rows
 */
export function facts(rows, { label } = {}) {
  return h(
    "dl",
    { class: "facts", "aria-label": label },
    rows.map(([term, value]) => [h("dt", null, term), h("dd", null, value ?? "–")]),
  );
}

/**
 * A table with a caption and column headers.
 * @template T
 * @param {string} caption
 * @param {Array<{title: string, cell: (row: T) => unknown, numeric?: boolean}>} columns
 * @param {T[]} rows
 * @param {{empty?: string, testid?: string}} [options]
 */
export function table(caption, columns, rows, { empty = "Nothing here yet.", testid } = {}) {
  if (!rows.length) return h("p", { class: "muted", "data-testid": testid }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "data-testid": testid },
      h("caption", null, caption),
      h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col", class: c.numeric ? "num" : null }, c.title)))),
      h(
        "tbody",
        null,
        rows.map((row) => h("tr", null, columns.map((c) => h("td", { class: c.numeric ? "num" : null }, c.cell(row))))),
      ),
    ),
  );
}

/** Cursor of the page before each page seen in this tab, to offer a "Newer" link. */
const previousCursor = new Map();

/**
 * Links to the newest, the previous (newer) and the next (older) page of a cursor-paged list.
 * Cursors are opaque, so "newer" is only known for pages reached from their predecessor here.
 * @param {(cursor: string|null) => string} pageHref hash link for a cursor
 * @param {string|null} cursor the cursor of the page shown
 * @param {string|null} nextCursor from the API
 */
export function pager(pageHref, cursor, nextCursor) {
  if (nextCursor) previousCursor.set(pageHref(nextCursor), cursor);
  const here = pageHref(cursor);
  const newer = previousCursor.has(here) ? previousCursor.get(here) : undefined;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    cursor ? h("a", { href: pageHref(null), rel: "first" }, "« Newest") : null,
    cursor && newer ? h("a", { href: pageHref(newer), rel: "prev" }, "‹ Newer") : null,
    nextCursor
      ? h("a", { href: pageHref(nextCursor), rel: "next" }, "Older ›")
      : h("span", { class: "muted" }, "End of list"),
  );
}

/**
 * The API's error, as the node said it.
 * @param {unknown} error
 */
export function errorBox(error) {
  const isApi = error instanceof ApiError;
  const message = error instanceof Error ? error.message : String(error);
  return h(
    "div",
    { class: "error", role: "alert", "data-testid": "error" },
    h("strong", null, isApi && error.status ? `Error ${error.status}` : "Error"),
    isApi ? h("code", null, error.code) : null,
    h("p", null, message || "The request failed."),
  );
}

/** A short "loading" note for slow answers. */
export function loading(what = "Loading…") {
  return h("p", { class: "muted", role: "status" }, what);
}

/**
 * A link that downloads an API export with the stored credential (a plain link would not
 * carry the Authorization header); failures are shown next to it.
 * @param {string} text
 * @param {string} path API path
 * @param {Record<string, unknown>} params
 * @param {string} filename
 */
export function downloadLink(text, path, params, filename) {
  const status = h("span", { class: "download-status", role: "status" });
  const link = h(
    "a",
    {
      href: "#",
      class: "download",
      onclick: async (event) => {
        event.preventDefault();
        status.textContent = "Preparing…";
        try {
          const response = await send(path, { params });
          const url = URL.createObjectURL(await response.blob());
          const anchor = h("a", { href: url, download: filename });
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
    text,
  );
  return h("span", { class: "download-wrap" }, link, status);
}
