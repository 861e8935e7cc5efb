/**
 * Sign-In with Ethereum (EIP-4361) through an injected wallet (window.ethereum, EIP-1193).
 *
 * The node writes the message (domain, nonce, expiry), the wallet signs it with personal_sign
 * (EIP-191), and the node checks the signature and answers with a short-lived token bound to
 * that one address. The page never sees a private key.
 */

import { request } from "./api.js";

/** @returns {boolean} whether an EIP-1193 wallet is injected */
export function available() {
  return typeof window.ethereum?.request === "function";
}

/**
 * Run the whole flow.
 * @returns {Promise<{token: string, role: string, address: string, expires_at: number|string}>}
 */
export async function signIn() {
  const provider = window.ethereum;
  const accounts = await provider.request({ method: "eth_requestAccounts" });
  if (!Array.isArray(accounts) || !accounts.length) throw new Error("The wallet shared no account.");
  const address = String(accounts[0]);
  const challenge = await request("/auth/challenge", { method: "POST", body: { address }, credential: null });
  const signature = await provider.request({
    method: "personal_sign",
    params: [utf8Hex(challenge.message), address],
  });
  return request("/auth/token", {
    method: "POST",
    body: { message: challenge.message, signature },
    credential: null,
  });
}

/** personal_sign takes the message as 0x-hex of its UTF-8 bytes. */
function utf8Hex(text) {
  return `0x${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
