#!/usr/bin/env node
// Build (or check) the committed contract artifacts with the pinned solc-js.
//
// Why one call: loading solc's wasm costs ~1 s, so every source in contracts/src is compiled in
// a single standard-json request. Why prague: solc 0.8.37 defaults to osaka, which py-evm cannot
// execute. Output is canonical JSON (sorted keys, 2-space indent, trailing newline) so a rebuild
// is byte-identical and `--check` (used by CI) can compare bytes.
//
// Usage: node scripts/build_contracts.mjs [--check]
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SRC_DIR = join(ROOT, "contracts", "src");
const OUT_DIR = join(ROOT, "contracts", "artifacts");
const NODE_MODULES = join(ROOT, "node_modules");

/** Recursively sort object keys so JSON.stringify is canonical. */
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value).sort().map((k) => [k, canonical(value[k])]),
    );
  }
  return value;
}

function listSources(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(full));
    else if (entry.name.endsWith(".sol")) out.push(full);
  }
  return out.sort();
}

/** Resolve `@openzeppelin/...` (and any other package import) from node_modules only. */
function findImports(path) {
  const candidate = join(NODE_MODULES, path);
  if (!candidate.startsWith(NODE_MODULES + "/") || !existsSync(candidate)) {
    return { error: `import not found: ${path} (run npm ci)` };
  }
  return { contents: readFileSync(candidate, "utf8") };
}

function compile() {
  const sources = {};
  for (const file of listSources(SRC_DIR)) {
    sources[relative(ROOT, file)] = { content: readFileSync(file, "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: "prague",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  // Warnings in our own sources are shown; those inside OpenZeppelin (pinned, not ours to
  // change) are only counted, so the check's output stays readable.
  const warnings = (output.errors ?? []).filter((e) => e.severity !== "error");
  const isLibrary = (e) => e.sourceLocation?.file?.startsWith("@openzeppelin/") ?? false;
  for (const e of warnings.filter((w) => !isLibrary(w))) console.error(e.formattedMessage.trimEnd());
  const libraryWarnings = warnings.filter(isLibrary).length;
  if (libraryWarnings > 0) {
    console.error(`build_contracts: ${libraryWarnings} warning(s) inside @openzeppelin (not shown)`);
  }
  if (errors.length > 0) {
    for (const e of errors) console.error(e.formattedMessage.trimEnd());
    console.error(`build_contracts: ${errors.length} compile error(s)`);
    process.exit(1);
  }

  const version = solc.version();
  const artifacts = new Map();
  for (const sourcePath of Object.keys(sources)) {
    for (const [name, c] of Object.entries(output.contracts[sourcePath] ?? {})) {
      if (artifacts.has(name)) {
        console.error(`build_contracts: contract name ${name} defined twice`);
        process.exit(1);
      }
      // sourceHash covers every source unit the contract was compiled from (its own file and
      // the OpenZeppelin files it imports), path and content, so it changes if any input does.
      const used = Object.keys(JSON.parse(c.metadata).sources).sort();
      const h = createHash("sha256");
      for (const p of used) {
        const content = sources[p]?.content ?? findImports(p).contents;
        h.update(p).update("\0").update(content).update("\0");
      }
      const artifact = canonical({
        contractName: name,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler: version,
        sourceHash: h.digest("hex"),
      });
      artifacts.set(`${name}.json`, JSON.stringify(artifact, null, 2) + "\n");
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes("--check");
  const artifacts = compile();
  const existing = existsSync(OUT_DIR)
    ? readdirSync(OUT_DIR).filter((f) => f.endsWith(".json")).sort()
    : [];
  if (check) {
    const problems = [];
    for (const [file, text] of [...artifacts].sort()) {
      const path = join(OUT_DIR, file);
      if (!existsSync(path)) problems.push(`missing: contracts/artifacts/${file}`);
      else if (readFileSync(path, "utf8") !== text) problems.push(`differs: contracts/artifacts/${file}`);
    }
    for (const file of existing) {
      if (!artifacts.has(file)) problems.push(`stale (no source): contracts/artifacts/${file}`);
    }
    if (problems.length > 0) {
      for (const p of problems) console.error(`build_contracts --check: ${p}`);
      console.error("build_contracts --check: artifacts are out of date; run `node scripts/build_contracts.mjs`");
      process.exit(1);
    }
    console.log(`build_contracts --check: ${artifacts.size} artifact(s) up to date`);
    return;
  }
  mkdirSync(OUT_DIR, { recursive: true });
  for (const [file, text] of artifacts) writeFileSync(join(OUT_DIR, file), text);
  for (const file of existing) {
    if (!artifacts.has(file)) unlinkSync(join(OUT_DIR, file));
  }
  console.log(`build_contracts: wrote ${[...artifacts.keys()].sort().join(", ")} (${solc.version()})`);
}

main();
