#!/usr/bin/env node
// ONNX Runtime's CPU provider (the native library npm's onnxruntime-node ships) on the rows bench/onnx_export.py
// wrote with PyTorch's logits: the same-run peer column of BENCHMARKS.md. One row per run() call, as
// `pairrm bench` and the PyTorch baseline run them; a warm-up row first.
//
//   npm ci --prefix bench/ort --ignore-scripts     # (scripts/setup.sh --bench does it)
//   node bench/ort_bench.mjs DIR [--threads 2] [--workload 8x300]
//
// Prints one JSON line per rows_<workload>.json in DIR: seconds per pair and the largest |logit - PyTorch's|.
// Exits non-zero where ONNX Runtime's logits are not PyTorch's within 1e-3 (a wrong graph, not rounding:
// fp32 over 24 layers differs by ~1e-6 here).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const ort = require(path.join(here, "ort", "node_modules", "onnxruntime-node"));

const args = process.argv.slice(2);
const dir = args[0];
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const threads = Number(option("--threads", "2"));
const only = option("--workload", null);
if (!dir) {
  console.error("usage: node bench/ort_bench.mjs DIR [--threads N] [--workload NAME]");
  process.exit(2);
}

const session = await ort.InferenceSession.create(path.join(dir, "pairrm.onnx"), {
  executionProviders: ["cpu"],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
  executionMode: "sequential",
});

const feeds = (row) => ({
  ids: new ort.Tensor("int64", BigInt64Array.from(row.ids.map(BigInt)), [row.ids.length]),
  positions: new ort.Tensor("int64", BigInt64Array.from(row.positions.map(BigInt)), [3]),
});

let worst = 0;
const files = fs.readdirSync(dir).filter((f) => /^rows_.*\.json$/.test(f) && (!only || f === `rows_${only}.json`));
if (files.length === 0) {
  console.error(`no rows_*.json in ${dir}: run bench/onnx_export.py first`);
  process.exit(2);
}
for (const file of files.sort()) {
  const data = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
  const rows = data.rows;
  if (rows.length !== data.pytorch_logits.length) throw new Error(`${file}: rows and logits differ in count`);
  await session.run(feeds(rows[0]));  // warm-up
  const logits = [];
  const t0 = process.hrtime.bigint();
  for (const row of rows) logits.push((await session.run(feeds(row))).logit.data[0]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  let diff = 0;
  logits.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - data.pytorch_logits[i]))));
  worst = Math.max(worst, diff);
  console.log(JSON.stringify({
    engine: `onnxruntime-node ${require(path.join(here, "ort", "node_modules", "onnxruntime-node", "package.json")).version} (CPU provider)`,
    workload: data.workload, threads, pairs: rows.length, seconds_total: seconds, seconds_per_pair: seconds / rows.length,
    pytorch_seconds_per_pair: data.pytorch_seconds_per_pair, max_abs_logit_difference_vs_pytorch: diff,
  }));
}
process.exit(worst <= 1e-3 ? 0 : 1);
