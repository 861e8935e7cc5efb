#!/usr/bin/env node
// End-to-end check that an unmodified ethers v6 client works against a node's JSON-RPC.
//
// Why: "any Ethereum tool works" is a promise of Tally's; this exercises the calls ethers makes
// in a wallet's everyday path (fee data, nonce, estimateGas, send, receipt polling, deploy, logs,
// revert decoding) and fails loudly on the first mismatch. Prints one JSON line of results.
//
// Usage: RPC_URL=http://127.0.0.1:8545 node tests/clients/ethers_e2e.mjs
// Env: RPC_URL (required), ARTIFACTS_DIR (default contracts/artifacts), MNEMONIC (dev mnemonic),
//      E2E_TIMEOUT_S (default 120).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ContractFactory, HDNodeWallet, JsonRpcProvider, Wallet, isError } from "ethers";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const RPC_URL = process.env.RPC_URL;
const ARTIFACTS = process.env.ARTIFACTS_DIR ?? join(ROOT, "contracts", "artifacts");
const MNEMONIC = process.env.MNEMONIC ?? "test test test test test test test test test test test junk";
const TIMEOUT_S = Number(process.env.E2E_TIMEOUT_S ?? 120);

function fail(message) {
  console.error(`ethers_e2e: FAIL: ${message}`);
  process.exit(1);
}

function expect(cond, message) {
  if (!cond) fail(message);
}

function artifact(name) {
  return JSON.parse(readFileSync(join(ARTIFACTS, `${name}.json`), "utf8"));
}

/** Run `fn`, expecting a CALL_EXCEPTION; return the error so its decoding can be checked. */
async function expectRevert(what, fn) {
  try {
    await fn();
  } catch (e) {
    if (isError(e, "CALL_EXCEPTION")) return e;
    fail(`${what}: expected CALL_EXCEPTION, got ${e.code ?? e}: ${e.shortMessage ?? e.message}`);
  }
  fail(`${what}: did not revert`);
}

async function main() {
  if (!RPC_URL) fail("set RPC_URL");
  // cacheTimeout -1: ethers otherwise caches identical requests for 250 ms, which hides nonce
  // changes between quick sends. staticNetwork: ask the chain id once, not before every call.
  const provider = new JsonRpcProvider(RPC_URL, undefined, { cacheTimeout: -1, staticNetwork: true });
  provider.pollingInterval = 200; // default 4 s is far slower than a 1 s block period
  const out = {};

  out.chainId = Number((await provider.getNetwork()).chainId);
  out.blockNumber = await provider.getBlockNumber();
  expect(out.chainId > 0, "chainId");

  const dev = HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0/0").connect(provider);
  out.dev = dev.address;
  const startBalance = await provider.getBalance(dev.address);
  expect(startBalance > 0n, `dev account ${dev.address} has no ether`);

  // 1. Plain ether transfer to a fresh address.
  const to = Wallet.createRandom().address;
  const value = 123456789n;
  const tx = await dev.sendTransaction({ to, value });
  const rcpt = await tx.wait(1, TIMEOUT_S * 1000);
  expect(rcpt && rcpt.status === 1, "ether transfer receipt status");
  expect(rcpt.hash === tx.hash, "receipt hash matches");
  expect((await provider.getBalance(to)) === value, "recipient ether balance");
  const fetched = await provider.getTransaction(tx.hash);
  expect(fetched && fetched.from === dev.address && fetched.value === value, "getTransaction");
  out.transferTx = tx.hash;
  out.transferBlock = rcpt.blockNumber;

  // 2. Deploy DevToken and transfer tokens.
  const tokenArt = artifact("DevToken");
  const supply = 10n ** 24n;
  const token = await new ContractFactory(tokenArt.abi, tokenArt.bytecode, dev).deploy(supply);
  const deployRcpt = await token.deploymentTransaction().wait(1, TIMEOUT_S * 1000);
  const tokenAddr = await token.getAddress();
  expect(deployRcpt.status === 1 && deployRcpt.contractAddress === tokenAddr, "deploy receipt");
  expect((await provider.getCode(tokenAddr)) === tokenArt.deployedBytecode, "deployed code");
  expect((await token.symbol()) === "TDT" && (await token.decimals()) === 18n, "token metadata");
  const amount = 5000n;
  const ttx = await token.transfer(to, amount);
  const trcpt = await ttx.wait(1, TIMEOUT_S * 1000);
  expect(trcpt.status === 1, "token transfer status");
  expect((await token.balanceOf(to)) === amount, "recipient token balance");
  expect((await token.balanceOf(dev.address)) === supply - amount, "sender token balance");
  out.token = tokenAddr;

  // 3. Logs: the mint and the transfer, by address and by indexed topic.
  const all = await token.queryFilter(token.filters.Transfer(), deployRcpt.blockNumber, "latest");
  expect(all.length === 2, `expected 2 Transfer events, got ${all.length}`);
  const toMe = await token.queryFilter(token.filters.Transfer(null, to), deployRcpt.blockNumber);
  expect(toMe.length === 1, `Transfer filtered by recipient: ${toMe.length}`);
  const ev = toMe[0];
  expect(ev.args.from === dev.address && ev.args.to === to && ev.args.value === amount, "event args");
  expect(ev.transactionHash === ttx.hash && ev.blockNumber === trcpt.blockNumber, "event position");
  out.transferEvents = all.length;

  // 4. Probe: revert string, custom error, indexed event, storage and a view.
  const probeArt = artifact("Probe");
  const probe = await new ContractFactory(probeArt.abi, probeArt.bytecode, dev).deploy();
  await probe.deploymentTransaction().wait(1, TIMEOUT_S * 1000);
  const e1 = await expectRevert("failRequire.staticCall", () => probe.failRequire.staticCall());
  expect(e1.reason === "probe: nope", `revert reason via eth_call: ${e1.reason}`);
  const e2 = await expectRevert("failRequire send", () => probe.failRequire());
  expect(e2.reason === "probe: nope", `revert reason via eth_estimateGas: ${e2.reason}`);
  const e3 = await expectRevert("failCustom.staticCall", () => probe.failCustom.staticCall(7));
  expect(e3.revert?.name === "ProbeError" && e3.revert.args[0] === 7n, "custom error decoded");
  const ptx = await probe.poke(42);
  const prcpt = await ptx.wait(1, TIMEOUT_S * 1000);
  expect((await probe.value()) === 42n, "Probe.value after poke");
  const poked = await probe.queryFilter(probe.filters.Poked(dev.address), prcpt.blockNumber);
  expect(poked.length === 1 && poked[0].args.value === 42n, "Poked event by indexed sender");
  out.revertReason = e1.reason;
  out.customError = `${e3.revert.name}(${e3.revert.args[0]})`;

  out.finalBlockNumber = await provider.getBlockNumber();
  out.ok = true;
  console.log(JSON.stringify(out));
  provider.destroy();
}

const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_S}s`), TIMEOUT_S * 1000);
timer.unref();
main().catch((e) => fail(e.stack ?? String(e)));
