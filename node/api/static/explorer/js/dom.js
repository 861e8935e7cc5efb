/**
 * Building DOM nodes without HTML strings.
 *
 * Everything the node returns is data, never markup: `h()` only ever creates elements by tag
 * name, sets attributes with `setAttribute` and adds text as text nodes, so nothing a
 * transaction, a label or an error message contains can become markup or script here.
 */

const SAFE_URL = /^(#|\/|blob:)/;

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, unknown>|null} [props] attributes; `class`, `on<event>` handlers,
 *   `dataset`; `href`/`src` only for in-app, same-origin or blob URLs.
 * @param {...unknown} children nodes or values shown as text; null/false are skipped.
 * @returns {HTMLElement}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") {
      el.className = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else if ((key === "href" || key === "src" || key === "action") && !SAFE_URL.test(String(value))) {
      throw new Error(`refusing a non-local URL in ${key}`);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * Append children (flattened) to a node, as text unless they already are nodes.
 * @param {Node} parent
 * @param {unknown[]} children
 */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replace a node's children.
 * @param {Node} parent
 * @param {...unknown} children
 */
export function replace(parent, ...children) {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}
