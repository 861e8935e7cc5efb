/**
 * The caller's credential, kept in sessionStorage.
 *
 * sessionStorage rather than localStorage: an API key or a sign-in token should not outlive the
 * tab, and it is not shared with other tabs the user did not sign in from. Session tokens from
 * Sign-In with Ethereum carry their expiry, so an expired one is dropped before it is sent.
 */

const KEY = "tally.session";

/**
 * @typedef {object} Session
 * @property {string} credential API key or bearer token.
 * @property {"api-key"|"ethereum"} method how the user signed in.
 * @property {string} role role the node reported for it.
 * @property {string|null} label API key label, if any.
 * @property {string[]} addresses addresses the credential acts for.
 * @property {number|null} expiresAt unix seconds, for session tokens.
 */

/** @returns {Session|null} */
export function load() {
  let session;
  try {
    session = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
  } catch {
    session = null;
  }
  if (!session || typeof session.credential !== "string") return null;
  if (session.expiresAt && session.expiresAt * 1000 <= Date.now()) {
    clear();
    return null;
  }
  return session;
}

/** @param {Session} session */
export function save(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
  window.dispatchEvent(new Event("tally:session"));
}

export function clear() {
  sessionStorage.removeItem(KEY);
  window.dispatchEvent(new Event("tally:session"));
}
