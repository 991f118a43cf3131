// What a page or a script needs to use an exported Crate ONNX model, with no DOM and no ONNX Runtime: the
// model's crate.* metadata, Crate's pixel layout, top-k, the class-token attention map and mask statistics.
// Shared by the browser page (app.js) and the Node.js sample (../onnx-node/classify.mjs).

/** The Crate ONNX contract version this code reads (metadata crate.format). */
export const FORMAT_VERSION = '1';

/**
 * The metadata_props (field 14) of the top-level ModelProto, read straight from the protobuf bytes:
 * onnxruntime-web does not expose custom metadata. Each entry is a StringStringEntryProto {key = 1, value = 2}.
 * @param {Uint8Array} bytes the .onnx file
 * @returns {Record<string, string>}
 */
export function readMetadata(bytes) {
  const decoder = new TextDecoder();
  const readVarint = (buf, pos) => {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++];
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return [value, pos];
      shift += 7n;
    }
  };
  // Calls visit(field, bytes) for each length-delimited field of one message; skips the other wire types.
  const fields = (buf, visit) => {
    let pos = 0;
    while (pos < buf.length) {
      let key;
      [key, pos] = readVarint(buf, pos);
      const field = Number(key >> 3n);
      const wire = Number(key & 7n);
      if (wire === 0) [, pos] = readVarint(buf, pos);
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        let length;
        [length, pos] = readVarint(buf, pos);
        const end = pos + Number(length);
        if (end > buf.length) throw new Error('truncated field');
        visit(field, buf.subarray(pos, end));
        pos = end;
      } else throw new Error(`unsupported wire type ${wire}`);
    }
  };
  const metadata = {};
  fields(bytes, (field, entry) => {
    if (field !== 14) return;
    let key = '';
    let value = '';
    fields(entry, (f, text) => {
      if (f === 1) key = decoder.decode(text);
      else if (f === 2) value = decoder.decode(text);
    });
    metadata[key] = value;
  });
  return metadata;
}

/**
 * The parts of a Crate model's metadata a consumer needs; throws an Error naming `source` when the bytes are
 * not a Crate model (or one of a format this code does not read).
 * @param {Uint8Array} bytes the .onnx file
 * @param {string} source how to name the file in messages
 */
export function describeModel(bytes, source) {
  let metadata;
  try { metadata = readMetadata(bytes); } catch (e) { throw new Error(`${source} is not an ONNX model (${e.message})`); }
  if (!metadata['crate.config'])
    throw new Error(`${source} is not a Crate model: its metadata has no crate.config entry (export one with \`crate export\`)`);
  const format = metadata['crate.format'];
  if (format !== undefined && format !== FORMAT_VERSION)
    throw new Error(`${source} uses Crate ONNX format ${format}; this reader (samples/web/crate-model.js) reads format ${FORMAT_VERSION}`);
  const config = JSON.parse(metadata['crate.config']);
  const outputs = (metadata['crate.outputs'] ?? 'logits,probabilities,features').split(',');
  const attentionLayer = config.depth >= 2 ? config.depth - 2 : 0; // the penultimate layer, as `crate segment` uses
  return {
    metadata,
    config,
    channels: config.channels,
    height: config.image_height,
    width: config.image_width,
    gridHeight: Math.floor(config.image_height / config.patch_size),
    gridWidth: Math.floor(config.image_width / config.patch_size),
    classNames: JSON.parse(metadata['crate.class_names']),
    normalization: JSON.parse(metadata['crate.normalization']),
    preset: metadata['crate.preset'],
    crateVersion: metadata['crate.version'],
    outputs,
    attentionOutput: outputs.includes(`attention_${attentionLayer}`) ? `attention_${attentionLayer}` : null,
    maskClassNames: outputs.includes('mask') ? JSON.parse(metadata['crate.mask_class_names']) : null,
  };
}

/** .NET's Math.Round: to the nearest integer, halves to even. */
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return fraction < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Unpremultiplied RGBA rows (a canvas ImageData) as Crate's model input: planar [C, H, W] floats of raw 0..255
 * pixels, alpha dropped, gray as ITU-R 601 luma rounded like .NET (Crate.Core's ImageFile). The model
 * normalises these itself ((x / 255 - mean) / std in the graph), so nothing else is done to them.
 * @param {Uint8ClampedArray} rgba height * width * 4 bytes
 */
export function toPlanes(rgba, height, width, channels) {
  if (channels !== 1 && channels !== 3) throw new Error(`models with ${channels} channels are not supported (1 or 3)`);
  const plane = height * width;
  const planes = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    if (channels === 1) planes[i] = roundHalfEven(0.299 * r + 0.587 * g + 0.114 * b);
    else { planes[i] = r; planes[plane + i] = g; planes[2 * plane + i] = b; }
  }
  return planes;
}

/** The k most probable classes, most probable first (ties: lower class id first), as {classId, label, probability}. */
export function topK(probabilities, classNames, k) {
  return Array.from(probabilities, (p, classId) => ({ classId, label: classNames[classId] ?? String(classId), probability: p }))
    .sort((a, b) => b.probability - a.probability || a.classId - b.classId)
    .slice(0, k);
}

/**
 * The class token's attention to each patch, averaged over heads, for the first image of an attention output
 * [batch, heads, T, T] (token 0 the class token, patches from firstPatch on, after any prompt tokens):
 * T - firstPatch values, row-major over the patch grid.
 */
export function classTokenAttention(attention, heads, tokens, firstPatch = 1) {
  const map = new Float32Array(tokens - firstPatch);
  for (let h = 0; h < heads; h++) {
    const row = h * tokens * tokens; // query = class token
    for (let j = firstPatch; j < tokens; j++) map[j - firstPatch] += attention[row + j] / heads;
  }
  return map;
}

/** Pixels per class id in a mask (int64 ids arrive as a BigInt64Array). */
export function maskCounts(mask, classes) {
  const counts = new Array(classes).fill(0);
  for (const id of mask) counts[Number(id)]++;
  return counts;
}

/** The PASCAL VOC palette colour of class id i (0 black), the colours Crate's overlay and mask PNGs use. */
export function vocColour(i) {
  let r = 0, g = 0, b = 0;
  for (let j = 0, c = i; j < 8; j++, c >>= 3) {
    r |= (c & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
  }
  return [r, g, b];
}

/** Crate's heat-map ramp (dark blue -> teal -> yellow) for t in [0, 1], as in its overlay PNGs. */
export function heatColour(t) {
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [2 * t - 0.8, 0.1 + 0.9 * t, 0.45 + 0.5 * t - 0.9 * t * t].map((v) => Math.trunc(255 * clamp(v)));
}
