#!/usr/bin/env node
// ethers v6 against a node: a self-sponsored EIP-7702 delegation (`Wallet.authorize`, a type-4
// transaction the account sends itself), block receipts and raw reads of the new methods.
// Prints one JSON line of results; exits non-zero on the first mismatch.
//
// Usage: RPC_URL=http://127.0.0.1:8545 PRIVATE_KEY=0x... node tests/clients/ethers_7702.mjs
// Env: RPC_URL, PRIVATE_KEY (a funded account), ARTIFACTS_DIR (default contracts/artifacts).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Contract, ContractFactory, JsonRpcProvider, Transaction, Wallet, keccak256 } from "ethers";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ARTIFACTS = process.env.ARTIFACTS_DIR ?? join(ROOT, "contracts", "artifacts");

function fail(message) {
  console.error(`ethers_7702: FAIL: ${message}`);
  process.exit(1);
}

function expect(cond, message) {
  if (!cond) fail(message);
}

async function main() {
  const url = process.env.RPC_URL;
  if (!url || !process.env.PRIVATE_KEY) fail("set RPC_URL and PRIVATE_KEY");
  const probe = JSON.parse(readFileSync(join(ARTIFACTS, "Probe.json"), "utf8"));
  const provider = new JsonRpcProvider(url, undefined, { cacheTimeout: -1, staticNetwork: true });
  provider.pollingInterval = 200;
  const funder = new Wallet(process.env.PRIVATE_KEY, provider);
  const out = {};

  const delegate = await new ContractFactory(probe.abi, probe.bytecode, funder).deploy();
  await delegate.deploymentTransaction().wait();
  const delegateAddress = await delegate.getAddress();

  // A fresh account, funded, delegates itself: its own transaction uses nonce 0, so the
  // authorization must name nonce 1 (the sender's nonce is bumped first).
  const eoa = Wallet.createRandom().connect(provider);
  await (await funder.sendTransaction({ to: eoa.address, value: 10n ** 18n })).wait();
  const auth = await eoa.authorize({ address: delegateAddress, nonce: 1 });
  const data = delegate.interface.encodeFunctionData("poke", [77n]);
  const sent = await eoa.sendTransaction({ type: 4, to: eoa.address, data, authorizationList: [auth] });
  const receipt = await sent.wait();
  expect(receipt.status === 1 && receipt.type === 4, `type-4 receipt ${receipt.status}/${receipt.type}`);
  const code = await provider.getCode(eoa.address);
  expect(code === `0xef0100${delegateAddress.slice(2).toLowerCase()}`, `designator ${code}`);
  const asDelegate = new Contract(eoa.address, probe.abi, provider);
  expect((await asDelegate.value()) === 77n, "the account runs the delegate's code");
  expect((await provider.getTransactionCount(eoa.address)) === 2, "sender and authority nonce");

  // The raw transaction parses back to the same type-4 transaction, hash for hash.
  const raw = await provider.send("debug_getRawTransaction", [sent.hash]);
  const parsed = Transaction.from(raw);
  expect(keccak256(raw) === sent.hash && parsed.type === 4, "debug_getRawTransaction");
  expect(parsed.authorizationList[0].address === delegateAddress, "raw authorizationList");
  const receipts = await provider.send("eth_getBlockReceipts", [receipt.blockHash]);
  expect(receipts.some((r) => r.transactionHash === sent.hash && r.type === "0x4"), "eth_getBlockReceipts");
  out.setCodeTx = sent.hash;
  out.blockReceipts = receipts.length;
  console.log(JSON.stringify(out));
}

main().catch((error) => fail(error.shortMessage ?? error.message ?? String(error)));
