/**
 * Turning the API's values into text people read.
 *
 * Amounts arrive as decimal strings in base units (wei, or the token's cents) and may exceed
 * 2^53, so they are handled as BigInt and never pass through floating point.
 */

/** The bank's WalletToken: 2 decimals, deployed at the same address on every Tally chain. */
export const WALLET_TOKEN = {
  address: "0x000000000000000000000000000000000000a002",
  symbol: "TEUR",
  decimals: 2,
};

/**
 * @param {string|number|bigint|null|undefined} value base units
 * @param {number} decimals
 * @returns {string} e.g. "1,234.50"
 */
export function units(value, decimals) {
  if (value === null || value === undefined || value === "") return "–";
  let amount;
  try {
    amount = BigInt(value);
  } catch {
    return String(value);
  }
  const negative = amount < 0n;
  if (negative) amount = -amount;
  const scale = 10n ** BigInt(decimals);
  const whole = (amount / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  let fraction = decimals ? (amount % scale).toString().padStart(decimals, "0") : "";
  if (decimals > 2) fraction = fraction.replace(/0+$/, "").padEnd(2, "0");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** @param {string|number|bigint|null|undefined} value token base units */
export function token(value) {
  return `${units(value, WALLET_TOKEN.decimals)} ${WALLET_TOKEN.symbol}`;
}

/** @param {string|number|bigint|null|undefined} wei */
export function ether(wei) {
  return `${units(wei, 18)} ETH`;
}

/**
 * Parse "12.5" as token base units (1250); null when it is not a valid amount.
 * @param {string} text
 * @param {number} [decimals]
 * @returns {bigint|null}
 */
export function parseUnits(text, decimals = WALLET_TOKEN.decimals) {
  const match = /^\s*(\d+)(?:\.(\d+))?\s*$/.exec(text);
  if (!match || (match[2] ?? "").length > decimals) return null;
  return BigInt(match[1]) * 10n ** BigInt(decimals) + BigInt((match[2] ?? "").padEnd(decimals, "0") || "0");
}

/**
 * @param {number|string|null|undefined} timestamp unix seconds
 * @returns {string} "2026-11-24 10:31:05 UTC"
 */
export function time(timestamp) {
  if (timestamp === null || timestamp === undefined) return "–";
  const date = new Date(Number(timestamp) * 1000);
  if (Number.isNaN(date.getTime())) return String(timestamp);
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * @param {string|null|undefined} hex address or hash
 * @returns {string} "0x1234…cdef" (the full value goes in a title attribute)
 */
export function short(hex) {
  if (!hex) return "–";
  return hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

/** @param {unknown} value */
export function yesNo(value) {
  return value ? "yes" : "no";
}

export const isAddress = (text) => /^0x[0-9a-fA-F]{40}$/.test(text);
export const isHash = (text) => /^0x[0-9a-fA-F]{64}$/.test(text);
