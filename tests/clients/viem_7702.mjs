#!/usr/bin/env node
// viem (a client no one here wrote) against a node: EIP-7702 and access lists end to end.
//
// Why: wallets built on viem sign an authorization (`signAuthorization`), send it in a type-4
// transaction (`sendTransaction({ authorizationList })`, estimated by the node first), and
// attach access lists from `eth_createAccessList`; each step must work unmodified.
// Prints one JSON line of results; exits non-zero on the first mismatch.
//
// Usage: RPC_URL=http://127.0.0.1:8545 PRIVATE_KEY=0x... node tests/clients/viem_7702.mjs
// Env: RPC_URL, PRIVATE_KEY (a funded account), ARTIFACTS_DIR (default contracts/artifacts).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicClient, createWalletClient, defineChain, encodeFunctionData, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ARTIFACTS = process.env.ARTIFACTS_DIR ?? join(ROOT, "contracts", "artifacts");

function fail(message) {
  console.error(`viem_7702: FAIL: ${message}`);
  process.exit(1);
}

function expect(cond, message) {
  if (!cond) fail(message);
}

async function main() {
  const url = process.env.RPC_URL;
  if (!url || !process.env.PRIVATE_KEY) fail("set RPC_URL and PRIVATE_KEY");
  const probe = JSON.parse(readFileSync(join(ARTIFACTS, "Probe.json"), "utf8"));
  const bootstrap = createPublicClient({ transport: http(url) });
  const chain = defineChain({
    id: await bootstrap.getChainId(),
    name: "tally",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const client = createPublicClient({ chain, transport: http(url), pollingInterval: 200 });
  const sponsor = privateKeyToAccount(process.env.PRIVATE_KEY);
  const wallet = createWalletClient({ account: sponsor, chain, transport: http(url) });
  const out = {};

  const deployHash = await wallet.deployContract({ abi: probe.abi, bytecode: probe.bytecode });
  const deployed = await client.waitForTransactionReceipt({ hash: deployHash });
  const delegate = deployed.contractAddress;
  expect(deployed.status === "success" && delegate, "Probe deployed");

  // 1. A fresh account authorizes Probe; the sponsor's type-4 transaction carries it.
  const authority = privateKeyToAccount(generatePrivateKey());
  const authorization = await wallet.signAuthorization({ account: authority, contractAddress: delegate });
  expect(authorization.nonce === 0 && authorization.chainId === chain.id, "authorization fields");
  const hash = await wallet.sendTransaction({
    authorizationList: [authorization],
    to: authority.address,
    data: encodeFunctionData({ abi: probe.abi, functionName: "poke", args: [99n] }),
  });
  const receipt = await client.waitForTransactionReceipt({ hash });
  expect(receipt.status === "success", `type-4 receipt status ${receipt.status}`);
  expect(receipt.type === "eip7702", `receipt type ${receipt.type}`);
  expect(receipt.logs.length === 1 && receipt.logs[0].address === authority.address.toLowerCase(),
    "the delegated account emits the delegate's event");
  const tx = await client.getTransaction({ hash });
  expect(tx.type === "eip7702" && tx.authorizationList.length === 1, `transaction type ${tx.type}`);
  expect(tx.authorizationList[0].address.toLowerCase() === delegate.toLowerCase(), "authorizationList address");
  // r is a quantity on the wire (geth's hexutil.U256: no leading zeros); viem keeps 32 bytes.
  expect(BigInt(tx.authorizationList[0].r) === BigInt(authorization.r), "authorizationList signature");
  const code = await client.getCode({ address: authority.address });
  expect(code === `0xef0100${delegate.slice(2).toLowerCase()}`, `delegation designator ${code}`);
  const value = await client.readContract({ address: authority.address, abi: probe.abi, functionName: "value" });
  expect(value === 99n, `delegated value() ${value}`);
  out.setCodeTx = hash;
  out.setCodeGasUsed = Number(receipt.gasUsed);

  // 2. eth_createAccessList, then a transaction carrying it with exactly the estimated gas.
  const data = encodeFunctionData({ abi: probe.abi, functionName: "poke", args: [5n] });
  const created = await client.createAccessList({ account: sponsor, to: delegate, data });
  expect(created.accessList.length === 1 && created.accessList[0].storageKeys.length === 1,
    `createAccessList ${JSON.stringify(created.accessList)}`);
  const gas = await client.estimateGas({ account: sponsor, to: delegate, data, accessList: created.accessList });
  const listed = await wallet.sendTransaction({ to: delegate, data, accessList: created.accessList, gas });
  const listedReceipt = await client.waitForTransactionReceipt({ hash: listed });
  expect(listedReceipt.status === "success", "access-list transaction with the estimated gas");
  expect(listedReceipt.gasUsed === created.gasUsed, `gasUsed ${listedReceipt.gasUsed} vs ${created.gasUsed}`);
  out.accessListGas = Number(gas);
  out.blobBaseFee = Number(await client.getBlobBaseFee());
  console.log(JSON.stringify(out));
}

main().catch((error) => fail(error.shortMessage ?? error.message ?? String(error)));
