// The demo page (served at `/`): a Tiptap editor that shows streamed answers, with the controls
// of the protocol. It uses the library only through its public entries (../client.js,
// ../stream-content.js) and the vendored Tiptap bundle.
//
// The answer streams through the Tiptap extension StreamContent (stream-content.js): the user
// can keep editing the rest of the document, and one undo removes the whole answer. With auth
// `none` it needs no credentials; when the server answers `unauthorized`, a token field shows
// (token.js). The `echo` provider (the sample documents) works only where the server's
// policy lists it; a refusal says so. The client keeps its session and the answer's cursor in
// the tab (`persist`): a reload resumes the answer in progress, and the earlier turns of the
// conversation show above the editor.
//
// Test hooks (window.streamerDemo): editor, client, binding (the streaming session, or null),
// lastComplete, lastCheck, freshEditorHTML(html), applyEvent(event), extensions(),
// setReveal(mode), conversation (the turns shown above the editor);
// document.body.dataset.streamState is idle | streaming | complete | error.

import {
  CodeBlockLowlight, Editor, Image, Mathematics, StarterKit, TableKit, TaskItem, TaskList,
  createLowlight, lowlightCommon,
} from '../vendor/tiptap.js';
import { StreamClient } from '../client.js';
import { StreamContent, followClient } from '../stream-content.js';
import { SAMPLES } from './samples.js';
import { storedToken, tokenPrompt } from './token.js';
import { mountTraceTimeline } from './trace-timeline.js';

// ----------------------------------------------------------------------------- editor

/** highlight.js's common languages; code with no language stays plain (no guessing: the
 * plugin highlights a streaming block again at each frame) */
const common = createLowlight(lowlightCommon);
const lowlight = { ...common, highlightAuto: (code) => common.highlight('plaintext', code) };

/** The editor's extensions (a fresh array each call: extension instances are per editor). */
function extensions() {
  return [
    StarterKit.configure({
      // TrailingNode would append an empty paragraph after a trailing table/code block,
      // which setContent() of the final HTML does not produce at the same place.
      trailingNode: false,
      link: { openOnClick: false },
      codeBlock: false, // CodeBlockLowlight below: the same node, highlighted by decorations
    }),
    CodeBlockLowlight.configure({ lowlight }),
    // the server's images (render.allow_images) sit in paragraphs: inline, loaded lazily
    Image.configure({ inline: true, HTMLAttributes: { loading: 'lazy' } }),
    TableKit.configure({ table: { resizable: false } }),
    TaskList,
    TaskItem.configure({ nested: true }),
    // MathML output: browsers draw it natively, no KaTeX stylesheet or fonts needed
    Mathematics.configure({ katexOptions: { output: 'mathml', throwOnError: false } }),
  ];
}

const editor = new Editor({
  element: document.getElementById('editor'),
  extensions: [...extensions(), StreamContent.configure({
    reveal: 'fade',
    onFrame: () => onFrame(),
  })],
  content: '<p>Answers appear here. Pick a provider, write a prompt, press <strong>Start</strong>.</p>',
});

/**
 * What a fresh editor with the same extensions makes of `html` through setContent().
 * @param {string} html
 * @returns {string}
 */
function freshEditorHTML(html) {
  const holder = document.createElement('div');
  document.getElementById('fresh-editor').appendChild(holder);
  const fresh = new Editor({ element: holder, extensions: extensions(), content: '' });
  try {
    fresh.commands.setContent(html);
    return fresh.getHTML();
  } finally {
    fresh.destroy();
    holder.remove();
  }
}

// ----------------------------------------------------------------------------- DOM helpers

const $ = (id) => document.getElementById(id);
const els = {
  conn: $('conn'), connState: $('conn-state'), connTransport: $('conn-transport'),
  provider: $('provider'), model: $('model'), sampleRow: $('sample-row'), sample: $('sample'),
  prompt: $('prompt'), pacingMode: $('pacing-mode'), transport: $('transport'),
  speed: $('speed'), speedValue: $('speed-value'), append: $('append'),
  start: $('btn-start'), pause: $('btn-pause'), resume: $('btn-resume'), skip: $('btn-skip'),
  stop: $('btn-stop'), form: $('start-form'),
  bar: $('bar'), barReceived: $('bar-received'), barDelivered: $('bar-delivered'),
  progressChars: $('progress-chars'), progressEta: $('progress-eta'),
  deliveryState: $('delivery-state'), error: $('error'), stats: $('stats'),
  reasoning: $('reasoning'), reasoningText: $('reasoning-text'), reasoningSize: $('reasoning-size'),
  toolsPanel: $('tools-panel'), toolList: $('tool-list'), useTools: $('use-tools'),
  docInfo: $('doc-info'), check: $('check'), reveal: $('reveal'),
  queuePanel: $('queue-panel'), queueList: $('queue-list'),
};

const SPEED_MIN_CPS = 10;
const SPEED_MAX_CPS = 2000;

/** Slider position 0..100 → cps on a log scale from 10 to 2000. */
function sliderToCps(v) {
  const cps = SPEED_MIN_CPS * Math.pow(SPEED_MAX_CPS / SPEED_MIN_CPS, v / 100);
  const step = cps < 100 ? 1 : cps < 1000 ? 10 : 100; // two significant digits
  return Math.min(SPEED_MAX_CPS, Math.round(cps / step) * step);
}

const fmt = new Intl.NumberFormat('en');

function formatMs(ms) {
  if (ms == null || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function setStreamState(state) {
  document.body.dataset.streamState = state;
  updateButtons();
}

function showError(text) {
  els.error.hidden = !text;
  els.error.textContent = text || '';
}

/** The provider of the `start` sent last and not yet started (its refusal names no stream). */
let pendingProvider = null;

/**
 * What to tell the user about an error event (or a refused control's StreamerError).
 * @param {{code?: string, message?: string, stream_id?: string, retry_after_ms?: number}} ev
 */
function describeError(ev) {
  if (ev.code === 'forbidden' && pendingProvider === 'echo' && !ev.stream_id) {
    refuseEcho();
    return 'forbidden: this server does not allow the echo provider, which plays the sample ' +
      'documents. List it in the server\'s policy.providers (for example ' +
      'STREAMER_POLICY_PROVIDERS=local,echo) or pick another provider.';
  }
  const retry = ev.retry_after_ms ? ` (retry in ${formatMs(ev.retry_after_ms)})` : '';
  return ev.code ? `${ev.code}: ${ev.message}${retry}` : String(ev.message || ev);
}

/** The echo option says the server refused it (the choice stays, so the message is seen). */
function refuseEcho() {
  const option = els.provider.querySelector('option[value="echo"]');
  if (option) option.textContent = 'echo (not allowed by this server)';
}

function updateButtons() {
  const connected = demo.client?.state === 'connected';
  const streaming = document.body.dataset.streamState === 'streaming';
  els.start.disabled = !connected;
  for (const b of [els.pause, els.resume, els.skip, els.stop]) b.disabled = !connected || !streaming;
}

/** The bar: `delivered` of `received` characters (both 100% once the stream is complete). */
function showBar(received, delivered, done) {
  const total = Math.max(received, 1);
  els.barReceived.style.width = `${done ? 100 : 100 * Math.min(1, received / total)}%`;
  els.barDelivered.style.width = `${100 * Math.min(1, delivered / total)}%`;
  els.bar.dataset.delivered = String(Math.round(100 * Math.min(1, delivered / total)));
}

function resetProgress() {
  els.bar.dataset.delivered = '0';
  els.barReceived.style.width = '0%';
  els.barDelivered.style.width = '0%';
  els.bar.classList.remove('generating');
  els.progressChars.textContent = '–';
  els.progressEta.textContent = '';
}

function showStats(ev) {
  const rows = [
    ['finish', ev.finish_reason],
    ['duration', formatMs(ev.duration_ms)],
  ];
  const { unit = 'tokens', ...usage } = ev.usage || {};
  const parts = [];
  for (const [k, v] of Object.entries(usage)) {
    parts.push(`${fmt.format(v)} ${k.replace(/_tokens$/, '').replace(/_/g, ' ')}`);
  }
  if (parts.length) rows.push([`usage (${unit})`, parts.join(' · ')]);
  if (ev.message_id) rows.push(['message', ev.message_id]);
  els.stats.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v ?? '';
    return [dt, dd];
  }));
  els.stats.hidden = false;
}

function updateDocInfo() {
  const b = demo.binding;
  const m = b?.mirror || (demo.lastStreamId && demo.client?.streams.get(demo.lastStreamId));
  if (!m) {
    els.docInfo.textContent = 'no stream';
    return;
  }
  els.docInfo.textContent =
    `stream ${m.streamId} · ${m.blocks.length} blocks · seq ${m.lastSeq}` +
    (b ? ` · ${b.frames} frames` : '');
}

// ----------------------------------------------------------------------------- client

/** Test hooks and live objects. */
const demo = {
  editor,
  /** @type {StreamClient|null} */
  client: null,
  /** @type {ReturnType<typeof followClient>|null} */
  editorBinding: null,
  /** The streaming session (StreamContent's), or null. */
  get binding() {
    return editor.storage.streamContent.session;
  },
  /** @param {'none'|'fade'|'typewriter'} mode */
  setReveal(mode) {
    streamContentOptions().reveal = mode;
    els.reveal.value = mode;
  },
  /** @type {object|null} the last stream_complete event */
  lastComplete: null,
  /** @type {{equal: boolean, editorHTML: string, freshHTML: string}|null} */
  lastCheck: null,
  lastStreamId: null,
  /** @type {object[]} the stored messages shown above the editor */
  conversation: [],
  /** HTML before the answer's range (appending mode), '' when the answer replaced the doc */
  prefixHTML: '',
  freshEditorHTML,
  extensions,
  samples: SAMPLES,
  /** Feed one server event through the same path as the socket's. */
  applyEvent(ev) {
    this.client.handleEvent(ev);
  },
};
window.streamerDemo = demo;

/** Where the server's routes are: the demo is `{ROOT}/static/demo/` (a path prefix moves both). */
const ROOT = new URL('../..', import.meta.url).href.replace(/\/+$/, '');
/** The tools a start offers when the box is ticked (the server's own, once it said). */
let demoTools = ['calculate', 'current_time'];

function setupClient() {
  demo.editorBinding?.dispose();
  demo.client?.close();

  // the token (if any) is read before each connection: a new one applies at the next;
  // `persist`: the session and the answer's cursor are kept in this tab (a reload resumes)
  const client = new StreamClient({ transport: els.transport.value, token: storedToken,
    persist: 'demo', baseUrl: ROOT });
  demo.client = client;

  // the editor first, so it has flushed when the page's own listeners run
  demo.editorBinding = followClient(editor, client, {
    at: () => (els.append.checked ? 'end' : 'replace'),
    onStart: (session) => {
      // what precedes the answer, for the end-of-stream check ('' when it replaced the doc)
      demo.prefixHTML = session.placeholder ? '' : editor.getHTML();
    },
  });

  for (const [type, fn] of Object.entries(LISTENERS)) client.on(type, fn);

  client.connect().catch(() => {});
  updateButtons();
}

// ----------------------------------------------------------------------------- client events

function onConnection({ state, transport, delayMs, error, reconnect }) {
  els.conn.dataset.state = state;
  let text = state;
  if (state === 'retrying') text += ` in ${formatMs(delayMs)}`;
  els.connState.textContent = text;
  const names = { websocket: 'WebSocket', sse: 'SSE', rest: 'REST' };
  els.connTransport.textContent = transport ? `via ${names[transport]}` : '';
  els.conn.title = error ? String(error.message || error) : 'connection state';
  if (state === 'error' && error?.code === 'unauthorized') {
    showError(`unauthorized: ${error.message}`);
    tokens.ask(storedToken() ? 'The server refused this token: paste another one.'
      : 'This server needs a token to connect.');
  } else if (state === 'error') {
    const what = error?.code ? `${error.code}: ${error.message}` : error?.message || error;
    showError(`Connection failed: ${what}`);
  } else if (state === 'connected') {
    showError('');
    if (!reconnect) showConversation();
  }
  updateButtons();
}

// ----------------------------------------------------------------------------- conversation

/** The earlier turns, above the editor: a collapsible list made here (index.html has none). */
const conversation = (() => {
  const box = document.createElement('details');
  box.id = 'conversation';
  box.open = true;
  box.hidden = true;
  const summary = document.createElement('summary');
  summary.className = 'muted small';
  const list = document.createElement('ol');
  list.style.cssText = 'list-style: none; padding: 0; margin: 0; max-height: 40vh; overflow: auto';
  box.append(summary, list);
  $('editor').before(box);
  return { box, summary, list };
})();

/** Requests of the conversation: only the latest one's answer is shown. */
let conversationAsked = 0;

/**
 * Show the session's stored conversation above the editor: every message but the answer
 * the editor shows (its prompt is the last item, just above it). Assistant turns are shown
 * in read-only editors with the same extensions, as they were streamed.
 */
async function showConversation() {
  const client = demo.client;
  const asked = ++conversationAsked;
  let messages;
  try {
    messages = await client.messages();
  } catch {
    return; // no session yet, or the server is gone: the next connection asks again
  }
  if (asked !== conversationAsked || client !== demo.client) return;
  const shown = client.activeStreamId ?? demo.lastStreamId;
  const turns = messages.filter((m) => m.role !== 'system' && m.message_id !== shown);
  demo.conversation = turns;
  for (const old of conversation.list.querySelectorAll('.turn-editor')) old.editor?.destroy();
  conversation.list.replaceChildren(...turns.map(turnItem));
  conversation.summary.textContent = 'Earlier in this conversation (' +
    `${turns.length} message${turns.length === 1 ? '' : 's'})`;
  conversation.box.hidden = turns.length === 0;
  conversation.list.scrollTop = conversation.list.scrollHeight;
}

/**
 * One stored message as a list item: the user's prompt as text, an answer as the editor
 * renders it.
 * @param {{message_id: string, role: string, markdown: string, html: string|null,
 *          status: string}} message
 */
function turnItem(message) {
  const item = document.createElement('li');
  item.dataset.role = message.role;
  item.dataset.message = message.message_id;
  item.style.cssText = 'margin: 0.4em 0; padding: 0.3em 0.6em; border-left: 3px solid ' +
    (message.role === 'user' ? '#8aa4d6' : '#9bc59b');
  const who = document.createElement('div');
  who.className = 'muted small';
  who.textContent = message.role === 'user' ? 'You' : `Answer${message.status === 'streaming'
    ? ' (still streaming)' : ''}`;
  item.appendChild(who);
  if (message.role === 'assistant' && message.html) {
    const holder = document.createElement('div');
    holder.className = 'turn-editor';
    holder.editor = new Editor({ element: holder, extensions: extensions(),
      content: message.html, editable: false });
    item.appendChild(holder);
  } else {
    const text = document.createElement('div');
    text.style.whiteSpace = 'pre-wrap';
    text.textContent = message.markdown;
    item.appendChild(text);
  }
  return item;
}

function onStreamStart(ev) {
  if (ev.queued) {
    els.deliveryState.textContent = `queued at position ${ev.position}`;
    addQueued(ev);
    return;
  }
  removeQueued(ev.stream_id);
  pendingProvider = null;
  demo.lastStreamId = ev.stream_id;
  showError('');
  if (!ev.resumed) clearSidePanels();
  els.stats.hidden = true;
  els.check.textContent = '';
  resetProgress();
  els.deliveryState.textContent = ev.provider
    ? `streaming from ${ev.provider}${ev.model ? ` / ${ev.model}` : ''}` : 'streaming';
  setStreamState('streaming');
  showConversation(); // the turn before this one is earlier now
}

function onChunk() {
  if (document.body.dataset.streamState !== 'streaming') setStreamState('streaming');
}

function onProgress(ev, ctx) {
  // only the stream being shown, and never after its end (a short answer's last progress
  // can count fewer delivered than received characters: complete shows 100%)
  if (ctx.mirror?.complete || (ev.stream_id && ev.stream_id !== demo.lastStreamId)) return;
  const received = ev.received_chars || 0;
  const finished = ev.generation_done && !ev.backlog_chars;
  const delivered = finished ? received : ev.delivered_chars || 0;
  showBar(received, delivered, ev.generation_done);
  els.bar.classList.toggle('generating', !ev.generation_done);
  els.progressChars.textContent =
    `${fmt.format(delivered)} / ${fmt.format(received)} chars` +
    (ev.backlog_chars ? ` · ${fmt.format(ev.backlog_chars)} waiting` : '');
  els.progressEta.textContent = ev.eta_ms != null
    ? `${formatMs(ev.eta_ms)} left${ev.generation_done ? '' : ' (generating…)'}`
    : (ev.generation_done ? '' : 'generating…');
}

function onReasoning(ev) {
  // the model's thinking: shown apart, collapsed, never in the answer's document
  els.reasoning.hidden = false;
  els.reasoningText.textContent += ev.text;
  els.reasoningSize.textContent = `(${fmt.format(els.reasoningText.textContent.length)} chars)`;
}

function onToolCall(ev) {
  els.toolsPanel.hidden = false;
  let item = els.toolList.querySelector(`li[data-call="${CSS.escape(ev.call_id)}"]`);
  if (!item) {
    item = document.createElement('li');
    item.dataset.call = ev.call_id;
    const name = document.createElement('strong');
    name.textContent = ev.name || '?';
    const args = document.createElement('code');
    args.className = 'args';
    item.append(name, ' ', args);
    els.toolList.appendChild(item);
  }
  const args = item.querySelector('.args');
  if (ev.status === 'delta') args.textContent += ev.arguments_delta || '';
  if (ev.status === 'complete') args.textContent = JSON.stringify(ev.arguments);
  if (ev.status === 'result') {
    const result = document.createElement('div');
    result.className = `result${ev.is_error ? ' error' : ''}`;
    result.textContent = `→ ${ev.result}`;
    item.appendChild(result);
  }
}

function onDeliveryState(ev) {
  if (ev.state === 'retrying') {
    els.deliveryState.textContent =
      `provider failed (${ev.code}); retry ${ev.attempt} in ${formatMs(ev.retry_in_ms)}`;
    return;
  }
  const cps = ev.cps ? ` · ${fmt.format(Math.round(ev.cps))} cps` : '';
  els.deliveryState.textContent = `${ev.state}${cps}`;
}

function onComplete(ev) {
  demo.lastComplete = ev;
  demo.lastStreamId = ev.stream_id;
  const editorHTML = editor.getHTML();
  const freshHTML = freshEditorHTML(demo.prefixHTML + (ev.html ?? ''));
  demo.lastCheck = { equal: editorHTML === freshHTML, editorHTML, freshHTML };
  els.check.textContent = demo.lastCheck.equal
    ? '✓ editor equals the final HTML' : '✗ editor differs from the final HTML';
  els.check.className = `small ${demo.lastCheck.equal ? 'ok' : 'bad'}`;
  showBar(1, 1, true);
  els.bar.classList.remove('generating');
  els.progressEta.textContent = 'done';
  els.deliveryState.textContent = `complete (${ev.finish_reason})`;
  showStats(ev);
  updateDocInfo();
  showConversation(); // the prompt of this answer is stored by now
  setStreamState(ev.finish_reason === 'error' || document.body.dataset.streamState === 'error'
    ? 'error' : 'complete');
}

function onResync({ streamId }) {
  console.warn(`streamer demo: stream ${streamId} resynchronised from stream_complete.html`);
}

function onError(ev) {
  showError(describeError(ev));
  const aboutStream = ev.stream_id || document.body.dataset.streamState === 'streaming' ||
    ev.control === 'start';
  if (aboutStream && !['invalid_message', 'rate_limited'].includes(ev.code)) setStreamState('error');
}

function onPong(ev, ctx) {
  if (ctx.rttMs != null) els.conn.title = `round trip ${ctx.rttMs} ms`;
}

/** The page's listener of each client event. */
const LISTENERS = {
  connection: onConnection,
  stream_start: onStreamStart,
  chunk: onChunk,
  progress: onProgress,
  reasoning: onReasoning,
  tool_call: onToolCall,
  state: onDeliveryState,
  stream_complete: onComplete,
  resync: onResync,
  error: onError,
  pong: onPong,
};

function onFrame() {
  updateDocInfo();
  const box = $('editor');
  if (box.scrollHeight - box.scrollTop - box.clientHeight < 80) box.scrollTop = box.scrollHeight;
}

/** The live settings of the editor's StreamContent (read at every frame). */
function streamContentOptions() {
  return editor.storage.streamContent.settings;
}

// ----------------------------------------------------------------------------- queue

function addQueued(ev) {
  els.queuePanel.hidden = false;
  let item = els.queueList.querySelector(`li[data-stream="${CSS.escape(ev.stream_id)}"]`);
  if (!item) {
    item = document.createElement('li');
    item.dataset.stream = ev.stream_id;
    const label = document.createElement('span');
    const up = document.createElement('button');
    up.type = 'button';
    up.textContent = '↑';
    up.title = 'move to the front of the queue';
    up.addEventListener('click', () => control(async () => {
      await demo.client.queueMove(ev.stream_id, 0);
      els.queueList.prepend(item);
    }));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = '✕';
    remove.title = 'remove from the queue';
    remove.addEventListener('click', () => control(async () => {
      await demo.client.queueRemove(ev.stream_id);
      removeQueued(ev.stream_id);
    }));
    item.append(label, ' ', up, ' ', remove);
    els.queueList.appendChild(item);
  }
  item.querySelector('span').textContent = `${ev.stream_id} (position ${ev.position})`;
}

function removeQueued(streamId) {
  els.queueList.querySelector(`li[data-stream="${CSS.escape(streamId)}"]`)?.remove();
  els.queuePanel.hidden = els.queueList.children.length === 0;
}

function clearSidePanels() {
  els.reasoning.hidden = true;
  els.reasoningText.textContent = '';
  els.reasoningSize.textContent = '';
  els.toolsPanel.hidden = true;
  els.toolList.replaceChildren();
}

// ----------------------------------------------------------------------------- controls

function fillSamples() {
  for (const name of Object.keys(SAMPLES)) {
    const opt = document.createElement('option');
    opt.value = opt.textContent = name;
    els.sample.appendChild(opt);
  }
}

let promptBeforeEcho = null;

// ----------------------------------------------------------------------------- providers

/** An option of the provider menu. */
function providerOption(name, text) {
  const option = document.createElement('option');
  option.value = name;
  option.textContent = text;
  return option;
}

/**
 * Fill the provider menu from `GET {ROOT}/api/providers`: the providers this caller may use,
 * each with its model and what it supports, and the tools the server offers (the "tools"
 * box offers them all). The built-in list stays when the server does not answer (e.g.
 * `unauthorized` before a token is given); `echo` stays for the sample documents, marked
 * when not allowed. A choice made while the request ran is kept.
 */
async function fillProviders() {
  let chosen = false;
  const choose = () => { chosen = true; };
  els.provider.addEventListener('change', choose);
  const token = storedToken();
  let listing = null;
  try {
    const response = await fetch(`${ROOT}/api/providers`,
      { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (response.ok) listing = await response.json();
  } catch {
    /* keep the built-in list */
  }
  els.provider.removeEventListener('change', choose);
  if (!listing?.providers?.length) return;
  const previous = els.provider.value;
  const options = listing.providers.map((p) => {
    const features = ['tools', 'reasoning'].filter((f) => p.supports[f]);
    return providerOption(p.name, `${p.name}${p.model ? ` (${p.model})` : ''}` +
      (features.length ? ` · ${features.join(', ')}` : ''));
  });
  const names = listing.providers.map((p) => p.name);
  if (!names.includes('echo')) options.push(providerOption('echo', 'echo (not allowed by this server)'));
  els.provider.replaceChildren(...options);
  els.provider.value = chosen && [...names, 'echo'].includes(previous)
    ? previous : (listing.default ?? names[0]);
  if (listing.tools?.length) demoTools = listing.tools.map((t) => t.name);
  // the same provider as before: the page is already set for it (and a prompt typed
  // meanwhile stays; a sample would overwrite it)
  if (els.provider.value !== previous) onProviderChange();
}

function onProviderChange() {
  const echo = els.provider.value === 'echo';
  els.sampleRow.hidden = !echo;
  if (echo) {
    promptBeforeEcho ??= els.prompt.value;
    els.prompt.value = SAMPLES[els.sample.value];
  } else if (promptBeforeEcho !== null) {
    els.prompt.value = promptBeforeEcho;
    promptBeforeEcho = null;
  }
}

function onSpeedInput() {
  const off = els.pacingMode.value === 'off';
  els.speed.disabled = off;
  els.speedValue.textContent = off ? 'unpaced' : `${fmt.format(sliderToCps(Number(els.speed.value)))} cps`;
}

/** Run a control call; show its failure in the error area. */
async function control(fn) {
  try {
    await fn();
  } catch (err) {
    showError(err.code ? describeError(err.event || err) : String(err.message || err));
  }
}

els.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const prompt = els.prompt.value;
  if (!prompt.trim()) {
    showError('Write a prompt first.');
    return;
  }
  showError('');
  const mode = els.pacingMode.value;
  const opts = {
    prompt,
    provider: els.provider.value,
    model: els.model.value.trim() || undefined,
    pacing: mode === 'off' ? { mode } : { mode, cps: sliderToCps(Number(els.speed.value)) },
  };
  if (opts.provider === 'echo') opts.echo = { delta_chars: 4, interval_ms: 20 };
  if (els.useTools.checked) opts.tools = demoTools;
  pendingProvider = opts.provider;
  control(() => demo.client.start(opts));
});
// through the editor's commands when it streams (they also hold / reveal locally), else the client
els.pause.addEventListener('click', () => control(() => editor.commands.pauseStream() ||
  demo.client.pause()));
els.resume.addEventListener('click', () => control(() => editor.commands.resumeStream() ||
  demo.client.resume()));
els.skip.addEventListener('click', () => control(() => editor.commands.skipStream() ||
  demo.client.skip()));
els.stop.addEventListener('click', () => control(() => editor.commands.stopStream() ||
  demo.client.stop()));
els.reveal.addEventListener('change', () => demo.setReveal(els.reveal.value));
document.getElementById('btn-drop').addEventListener('click', () => demo.client.dropConnection());
els.speed.addEventListener('input', onSpeedInput);
els.speed.addEventListener('change', () => {
  if (document.body.dataset.streamState === 'streaming' && els.pacingMode.value !== 'off') {
    control(() => demo.client.speed(sliderToCps(Number(els.speed.value))));
  }
});
els.pacingMode.addEventListener('change', onSpeedInput);
els.provider.addEventListener('change', onProviderChange);
els.sample.addEventListener('change', () => {
  els.prompt.value = SAMPLES[els.sample.value];
});
els.transport.addEventListener('change', setupClient);
const tokens = tokenPrompt($, setupClient);
mountTraceTimeline({ button: $('btn-trace'), panel: $('trace-panel'), root: ROOT,
  token: storedToken, streamId: () => demo.lastStreamId });

fillSamples();
onSpeedInput();
onProviderChange();
fillProviders();
setupClient();
setStreamState('idle');
