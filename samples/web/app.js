// The page: loads an exported Crate model in onnxruntime-web (WebAssembly), turns a picked or dropped image into
// the model's input as Crate does, and shows the top classes and, when the model has them, the segmentation mask
// or the class token's attention over the image.
import * as ort from 'onnxruntime-web';
import { describeModel, toPlanes, topK, classTokenAttention, maskCounts, vocColour, heatColour } from './crate-model.js';

const DEFAULT_MODEL = 'models/model.onnx';
const TOP = 5;
const $ = (id) => document.getElementById(id);

// Worker threads need a cross-origin isolated page, which a plain static server does not give; one thread also
// gives the same arithmetic on every machine.
ort.env.wasm.numThreads = 1;

/** For the console (and the browser test): the loaded model and the last result. */
const state = { model: null, session: null, source: null, image: null, last: null };
window.crate = state;

function setStatus(kind, text) {
  const status = $('status');
  status.dataset.state = kind;
  status.textContent = text;
}

/** Runs an event handler, showing its failure in the status line instead of losing it in the console. */
const guarded = (action) => async (...args) => {
  try { await action(...args); } catch (e) { setStatus('error', e.message ?? String(e)); }
};

async function loadModel(bytes, source) {
  setStatus('loading', `Loading ${source}…`);
  const model = describeModel(bytes, source);
  let session;
  try { session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] }); }
  catch (e) { throw new Error(`onnxruntime-web cannot load ${source}: ${e.message ?? e}`); }
  if (!session.inputNames.includes('image')) throw new Error(`${source} has Crate metadata but no input 'image'`);
  await state.session?.release();
  Object.assign(state, { model, session, source, last: null });
  showModel();
  clearResult();
  if (state.image) await classify(state.image);
  else setStatus('ready', `${source} loaded: choose or drop an image.`);
}

function showModel() {
  const m = state.model;
  const list = (values) => `[${values.map((v) => +v.toFixed(4)).join(', ')}]`;
  const kind = m.maskClassNames ? `segmentation, ${m.maskClassNames.length} mask classes` : 'classification';
  const rows = [
    ['file', state.source],
    ['model', `CRATE ${m.preset}, ${kind}, ${m.classNames.length} image classes (Crate ${m.crateVersion})`],
    ['input', `${m.channels === 1 ? 'grayscale' : 'RGB'} ${m.width}×${m.height}, patches of ${m.config.patch_size} px`],
    ['normalisation', `(x / ${m.normalization.pixel_scale} − mean) / std, mean ${list(m.normalization.mean)}, std ${list(m.normalization.std)}, inside the model`],
    ['outputs', m.outputs.join(', ')],
  ];
  $('model-info').replaceChildren(...rows.flatMap(([term, text]) => [element('dt', term), element('dd', text)]));
}

function element(tag, text, attributes = {}) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  return e;
}

/**
 * The image as the model's RGBA pixels: decoded without colour management (as Crate's decoder), then resized to
 * the model's size with the browser's bilinear filter when its size differs (Crate: bilinear with mipmaps).
 */
async function decode(file, height, width) {
  let bitmap;
  try { bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }); }
  catch { throw new Error(`${file.name} is not an image this browser can decode`); }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.imageSmoothingQuality = 'medium';
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return context.getImageData(0, 0, width, height).data;
}

async function classify(file) {
  state.image = file;
  if (!state.session) throw new Error(`No model loaded: choose an .onnx file first (or put one at ${DEFAULT_MODEL}).`);
  setStatus('running', `Running the model on ${file.name}…`);
  const m = state.model;
  const input = toPlanes(await decode(file, m.height, m.width), m.height, m.width, m.channels);
  const fetches = ['probabilities', ...(m.attentionOutput ? [m.attentionOutput] : []), ...(m.maskClassNames ? ['mask'] : [])];
  const started = performance.now();
  const outputs = await state.session.run({ image: new ort.Tensor('float32', input, [1, m.channels, m.height, m.width]) }, fetches);
  const milliseconds = performance.now() - started;

  const top = topK(outputs.probabilities.data, m.classNames, TOP);
  const firstPatch = 1 + (m.config.prompt_tokens ?? 0); // the class token, then any prompt tokens, then the patches
  const tokens = firstPatch + m.gridHeight * m.gridWidth;
  const attention = m.attentionOutput ? classTokenAttention(outputs[m.attentionOutput].data, m.config.heads, tokens, firstPatch) : null;
  const mask = m.maskClassNames ? outputs.mask.data : null;
  const counts = mask ? maskCounts(mask, m.maskClassNames.length) : null;
  state.last = { file: file.name, input, top, attention, mask, maskCounts: counts };

  showImage(input);
  showTop(top);
  if (mask) showMask(mask, counts);
  else if (attention) showAttention(attention);
  else showNoOverlay();
  setStatus('done', `${file.name}: ${top[0].label} (${percent(top[0].probability)}) in ${milliseconds.toFixed(0)} ms.`);
}

const percent = (p) => `${(100 * p).toFixed(1)}%`;

/** Draws what the model sees: the input pixels at the model's resolution (the page scales them up). */
function showImage(input) {
  const m = state.model;
  const plane = m.height * m.width;
  const image = new ImageData(m.width, m.height);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = input[(m.channels === 1 ? 0 : c) * plane + i];
    image.data[4 * i + 3] = 255;
  }
  const canvas = $('image-canvas');
  [canvas.width, canvas.height] = [m.width, m.height];
  canvas.getContext('2d').putImageData(image, 0, 0);
  $('view').hidden = false;
}

function showTop(top) {
  $('top-classes').replaceChildren(...top.map(({ classId, label, probability }) => {
    const row = element('li', undefined, { 'data-class-id': classId, 'data-probability': probability });
    const bar = element('span', undefined, { class: 'bar' });
    bar.append(element('span', undefined, { style: `width: ${100 * probability}%` }));
    row.append(element('span', label, { class: 'label', title: label }), bar, element('span', percent(probability), { class: 'value' }));
    return row;
  }));
}

/** Paints an overlay of `width` x `height` cells, colour(i) giving cell i's [r, g, b, a]. */
function paintOverlay(width, height, colour) {
  const overlay = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) overlay.data.set(colour(i), 4 * i);
  const canvas = $('overlay-canvas');
  [canvas.width, canvas.height] = [width, height];
  canvas.getContext('2d').putImageData(overlay, 0, 0);
}

function showMask(mask, counts) {
  const m = state.model;
  paintOverlay(m.width, m.height, (i) => {
    const id = Number(mask[i]);
    return id === 0 ? [0, 0, 0, 0] : [...vocColour(id), 255]; // background stays the image
  });
  $('overlay-caption').textContent = 'Segmentation mask (the model\'s mask output), coloured by class:';
  const total = mask.length;
  $('legend').replaceChildren(...counts.flatMap((pixels, classId) => {
    if (pixels === 0) return [];
    const item = element('li', undefined, { 'data-class-id': classId, 'data-pixels': pixels });
    const colour = classId === 0 ? 'transparent' : `rgb(${vocColour(classId).join(',')})`; // background is not painted
    const swatch = element('span', undefined, { class: 'swatch', style: `background: ${colour}` });
    item.append(swatch, element('span', `${m.maskClassNames[classId]}: ${pixels} px (${percent(pixels / total)})`));
    return [item];
  }));
}

function showAttention(attention) {
  const m = state.model;
  let min = Infinity, max = -Infinity;
  for (const v of attention) { min = Math.min(min, v); max = Math.max(max, v); }
  paintOverlay(m.gridWidth, m.gridHeight, (i) => [...heatColour(max > min ? (attention[i] - min) / (max - min) : 0), 255]);
  const layer = m.attentionOutput.slice('attention_'.length);
  $('overlay-caption').textContent =
    `Where the class token looks: layer ${layer}'s attention from the class token to each patch, mean over ${m.config.heads} heads.`;
  const ramp = element('span', undefined, {
    class: 'ramp',
    style: `background: linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) => `rgb(${heatColour(t).join(',')})`).join(', ')})`,
  });
  const item = element('li');
  item.append(element('span', `${(100 * min).toFixed(2)}%`), ramp, element('span', `${(100 * max).toFixed(2)}% of the attention`));
  $('legend').replaceChildren(item);
}

function showNoOverlay() {
  const canvas = $('overlay-canvas');
  [canvas.width, canvas.height] = [1, 1];
  canvas.getContext('2d').clearRect(0, 0, 1, 1);
  $('overlay-caption').textContent =
    'No overlay: this model was exported without attention maps (export it with `crate export --attention` to see where the class token looks).';
  $('legend').replaceChildren();
}

function clearResult() {
  $('top-classes').replaceChildren();
  $('legend').replaceChildren();
  $('overlay-caption').textContent = '';
}

async function openFile(file) {
  if (file.name.toLowerCase().endsWith('.onnx')) await loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
  else await classify(file);
}

function wire() {
  $('model-file').addEventListener('change', guarded(async (e) => { if (e.target.files[0]) await openFile(e.target.files[0]); }));
  $('image-file').addEventListener('change', guarded(async (e) => { if (e.target.files[0]) await classify(e.target.files[0]); }));
  const zone = $('drop-zone');
  document.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('dragging'); });
  document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) zone.classList.remove('dragging'); });
  document.addEventListener('drop', guarded(async (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    const file = e.dataTransfer.files[0];
    if (file) await openFile(file);
  }));
  $('show-overlay').addEventListener('change', (e) => { $('overlay-canvas').hidden = !e.target.checked; });
  $('overlay-opacity').addEventListener('input', (e) => { $('overlay-canvas').style.opacity = e.target.value; });
}

async function start() {
  wire();
  const response = await fetch(DEFAULT_MODEL);
  if (!response.ok) {
    setStatus('empty', `No model at ${DEFAULT_MODEL} (HTTP ${response.status}): export one there ` +
      '(crate export --weights W --attention --out samples/web/models/model.onnx) or choose an .onnx file.');
    return;
  }
  await loadModel(new Uint8Array(await response.arrayBuffer()), DEFAULT_MODEL);
}

guarded(start)();
