#!/usr/bin/env node
// Classifies images with an exported Crate ONNX model in onnxruntime-web (WebAssembly), a second runtime
// independent of .NET, and prints one JSON document on stdout.
//
// Usage: node classify.mjs MODEL.onnx INPUT [INPUT...]
//   INPUT is either a JSON file {"shape": [n, C, H, W], "data": [n*C*H*W numbers]} of raw 0..255 pixels, or a
//   binary PGM (P5, grayscale) / PPM (P6, RGB) image of the model's size with maxval 255.
// Output: {"engine": ..., "model": {...}, "results": [{"input", "index", "top1", "label", "probability", "logits"}]}
// The model normalises pixels itself (see its crate.normalization metadata), so raw pixels go straight in.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { describeModel } from '../web/crate-model.js';

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

// Binary PGM/PPM: "P5|P6 <width> <height> <maxval>" then bytes, row-major, RGB interleaved for P6.
function readNetpbm(path, buf) {
  const header = [];
  let pos = 0;
  while (header.length < 4) {
    while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos]))) pos++;
    if (buf[pos] === 0x23) { while (pos < buf.length && buf[pos] !== 0x0a) pos++; continue; } // comment
    let token = '';
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos]))) token += String.fromCharCode(buf[pos++]);
    if (token === '') fail(`${path}: truncated PGM/PPM header`);
    header.push(token);
  }
  pos++; // the single whitespace byte before the pixels
  const [magic, w, h, max] = [header[0], Number(header[1]), Number(header[2]), Number(header[3])];
  if (max !== 255) fail(`${path}: only 8-bit PGM/PPM (maxval 255) is supported, got maxval ${max}`);
  const channels = magic === 'P5' ? 1 : 3;
  if (buf.length - pos < w * h * channels) fail(`${path}: truncated pixel data`);
  const data = new Float32Array(channels * h * w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < channels; c++) data[(c * h + y) * w + x] = buf[pos + (y * w + x) * channels + c];
  return { shape: [1, channels, h, w], data };
}

function readInput(path) {
  const buf = readFileSync(path);
  const magic = buf.subarray(0, 2).toString('latin1');
  if (magic === 'P5' || magic === 'P6') return readNetpbm(path, buf);
  let parsed;
  try { parsed = JSON.parse(buf.toString('utf8')); } catch (e) { fail(`${path}: neither a PGM/PPM image nor JSON (${e.message})`); }
  if (!Array.isArray(parsed.shape) || parsed.shape.length !== 4 || !Array.isArray(parsed.data))
    fail(`${path}: JSON input needs "shape": [n, C, H, W] and "data": [numbers]`);
  return { shape: parsed.shape, data: Float32Array.from(parsed.data) };
}

async function main() {
  const [modelPath, ...inputs] = process.argv.slice(2);
  if (!modelPath || inputs.length === 0) fail('usage: node classify.mjs MODEL.onnx INPUT [INPUT...]');

  const bytes = new Uint8Array(readFileSync(modelPath));
  let model;
  try { model = describeModel(bytes, modelPath); } catch (e) { fail(e.message); }
  const { classNames } = model;
  const expected = [model.channels, model.height, model.width];

  ort.env.wasm.numThreads = 1; // no worker threads: the same arithmetic on every machine
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });

  const results = [];
  for (const path of inputs) {
    const { shape, data } = readInput(path);
    if (shape.slice(1).join('x') !== expected.join('x'))
      fail(`${path}: the model takes [batch, ${expected.join(', ')}] images, got [${shape.join(', ')}]`);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) fail(`${path}: ${data.length} values do not fill shape [${shape.join(', ')}]`);
    const output = await session.run({ image: new ort.Tensor('float32', data, shape) }, ['logits', 'probabilities']);
    const classes = output.logits.dims[1];
    for (let i = 0; i < shape[0]; i++) {
      const logits = Array.from(output.logits.data.subarray(i * classes, (i + 1) * classes));
      const probabilities = output.probabilities.data.subarray(i * classes, (i + 1) * classes);
      let top1 = 0;
      for (let k = 1; k < classes; k++) if (probabilities[k] > probabilities[top1]) top1 = k;
      results.push({ input: path, index: i, top1, label: classNames[top1], probability: probabilities[top1], logits });
    }
  }
  process.stdout.write(JSON.stringify({
    engine: `onnxruntime-web ${ort.env.versions.web} (wasm)`,
    model: { path: modelPath, preset: model.preset, crate_version: model.crateVersion, input: [-1, ...expected] },
    results,
  }) + '\n');
}

main().catch((e) => fail(e.message ?? String(e)));
