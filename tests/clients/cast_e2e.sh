#!/usr/bin/env bash
# End-to-end check that foundry's cast (pinned via npm) works against a node's JSON-RPC.
#
# Why: cast is what operators reach for in a shell; it formats requests differently from ethers
# and web3 (raw eth_call for reverts, eth_getLogs with topic filters, receipt fields by name),
# so it catches RPC answers that only one client tolerates. Prints one JSON line on success and
# exits non-zero with a message on the first mismatch.
#
# Usage: RPC_URL=http://127.0.0.1:8545 bash tests/clients/cast_e2e.sh
# Env: RPC_URL (required), ARTIFACTS_DIR (default contracts/artifacts), MNEMONIC (dev mnemonic),
#      CAST (path of the cast binary; default: the one npm installed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${RPC_URL:?set RPC_URL}"
ARTIFACTS_DIR="${ARTIFACTS_DIR:-$ROOT/contracts/artifacts}"
MNEMONIC="${MNEMONIC:-test test test test test test test test test test test junk}"
if [[ -z "${CAST:-}" ]]; then
  CAST="$(ls "$ROOT"/node_modules/@foundry-rs/cast-linux-*/bin/cast 2>/dev/null | head -n1 || true)"
fi
[[ -x "${CAST:-}" ]] || { echo "cast_e2e: FAIL: cast binary not found (run npm ci)" >&2; exit 1; }

export ETH_RPC_URL="$RPC_URL"
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1

fail() { echo "cast_e2e: FAIL: $*" >&2; exit 1; }
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', expected '$2'"; }
# Bounded: every cast call that waits gets a timeout, so a stuck node fails the script.
c() { timeout 120 "$CAST" "$@"; }
artifact_field() { node -e 'process.stdout.write(require(process.argv[1])[process.argv[2]])' "$ARTIFACTS_DIR/$1.json" "$2"; }
# json_field PATH: print a (dotted) field of the JSON on stdin, e.g. `json_field 0.address`.
json_field() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v[k];console.log(v)})' "$1"
}
# Status from the receipt's JSON ("0x1"), not cast's human rendering, which varies by version.
receipt_status() { c receipt "$1" --json | json_field status; }

CHAIN_ID="$(c chain-id)"
BLOCK0="$(c block-number)"
KEY="$(c wallet private-key "$MNEMONIC" 0)"
DEV="$(c wallet address --private-key "$KEY")"
[[ "$(c balance "$DEV")" != "0" ]] || fail "dev account $DEV has no ether"

# 1. Plain ether transfer to a fresh address (cast send waits for the receipt).
TO="$(c wallet new --json | json_field 0.address)"
TX="$(c send --private-key "$KEY" "$TO" --value 123456789wei --json | json_field transactionHash)"
expect_eq "$(receipt_status "$TX")" "0x1" "ether transfer status"
expect_eq "$(c balance "$TO")" "123456789" "recipient ether balance"
expect_eq "$(c tx "$TX" from | tr 'A-F' 'a-f')" "$(echo "$DEV" | tr 'A-F' 'a-f')" "tx sender"

# 2. Deploy DevToken (bytecode + encoded constructor argument) and transfer tokens.
SUPPLY=1000000000000000000000000
CODE="$(artifact_field DevToken bytecode)$(c abi-encode 'constructor(uint256)' "$SUPPLY" | sed 's/^0x//')"
DEPLOY_TX="$(c send --private-key "$KEY" --create "$CODE" --json | json_field transactionHash)"
expect_eq "$(receipt_status "$DEPLOY_TX")" "0x1" "DevToken deploy status"
TOKEN="$(c receipt "$DEPLOY_TX" contractAddress)"
DEPLOY_BLOCK="$(c receipt "$DEPLOY_TX" blockNumber)"
expect_eq "$(c code "$TOKEN")" "$(artifact_field DevToken deployedBytecode)" "deployed code"
expect_eq "$(c call "$TOKEN" 'symbol()(string)')" '"TDT"' "token symbol"
TTX="$(c send --private-key "$KEY" "$TOKEN" 'transfer(address,uint256)' "$TO" 5000 --json | json_field transactionHash)"
expect_eq "$(receipt_status "$TTX")" "0x1" "token transfer status"
expect_eq "$(c call "$TOKEN" 'balanceOf(address)(uint256)' "$TO")" "5000" "recipient token balance"

# 3. Logs: both Transfer events by address, and the transfer alone by its indexed recipient.
EVENT='Transfer(address indexed from,address indexed to,uint256 value)'
N_ALL="$(c logs --from-block "$DEPLOY_BLOCK" --to-block latest --address "$TOKEN" "$EVENT" --json | json_field length)"
expect_eq "$N_ALL" "2" "Transfer logs by address"
N_TO="$(c logs --from-block "$DEPLOY_BLOCK" --to-block latest --address "$TOKEN" "$EVENT" "" "$TO" --json | json_field length)"
expect_eq "$N_TO" "1" "Transfer logs by indexed recipient"

# 4. Probe: the revert reason must come back through eth_call.
PCODE="$(artifact_field Probe bytecode)"
PTX="$(c send --private-key "$KEY" --create "$PCODE" --json | json_field transactionHash)"
PROBE="$(c receipt "$PTX" contractAddress)"
if OUT="$(c call "$PROBE" 'failRequire()' 2>&1)"; then fail "failRequire did not revert: $OUT"; fi
[[ "$OUT" == *"probe: nope"* ]] || fail "revert reason not decoded: $OUT"
c send --private-key "$KEY" "$PROBE" 'poke(uint256)' 42 >/dev/null
expect_eq "$(c call "$PROBE" 'value()(uint256)')" "42" "Probe.value after poke"

printf '{"ok":true,"chainId":%s,"blockNumber":%s,"dev":"%s","transferTx":"%s","token":"%s","transferLogs":%s,"probe":"%s"}\n' \
  "$CHAIN_ID" "$BLOCK0" "$DEV" "$TX" "$TOKEN" "$N_ALL" "$PROBE"
