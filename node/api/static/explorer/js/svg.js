/**
 * Showing the QR code the API draws (segno's SVG) without trusting it as markup.
 *
 * The SVG is parsed as XML by DOMParser (which runs nothing), then rebuilt element by element
 * into the page from an allow-list of drawing elements and attributes, so scripts, event
 * handlers, links and foreign content cannot come along even if the text were hostile.
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const ELEMENTS = new Set(["svg", "g", "path", "rect", "title", "desc"]);
const ATTRIBUTES = new Set([
  "width", "height", "viewBox", "class", "d", "fill", "stroke", "stroke-width",
  "transform", "x", "y", "version", "shape-rendering",
]);

/**
 * @param {string} text SVG document text
 * @param {string} label accessible name of the picture
 * @returns {SVGSVGElement}
 */
export function safeSvg(text, label) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg" || doc.getElementsByTagName("parsererror").length) {
    throw new Error("The node's QR code is not a valid SVG image.");
  }
  const svg = /** @type {SVGSVGElement} */ (copy(root));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (!svg.hasAttribute("viewBox") && svg.hasAttribute("width") && svg.hasAttribute("height")) {
    const width = parseFloat(svg.getAttribute("width") ?? "");
    const height = parseFloat(svg.getAttribute("height") ?? "");
    if (width > 0 && height > 0) svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  }
  return svg;
}

/** @param {Element} source */
function copy(source) {
  const target = document.createElementNS(SVG_NS, source.localName);
  for (const attr of Array.from(source.attributes)) {
    if (ATTRIBUTES.has(attr.name)) target.setAttribute(attr.name, attr.value);
  }
  for (const child of Array.from(source.childNodes)) {
    if (child.nodeType === Node.ELEMENT_NODE && ELEMENTS.has(/** @type {Element} */ (child).localName)) {
      target.appendChild(copy(/** @type {Element} */ (child)));
    } else if (child.nodeType === Node.TEXT_NODE && ["title", "desc"].includes(source.localName)) {
      target.appendChild(document.createTextNode(child.textContent ?? ""));
    }
  }
  return target;
}
