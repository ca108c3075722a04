// A stream's trace as a timeline: one lane per scope (the generation, the provider call, each
// subscription by its connection id, the heartbeat), each entry a mark at its time, spans
// where a scope was open (provider_call_opened → _closed, subscriber_joined → _left,
// started → completed), cancel causes marked and named (a cancel's reason, an error's code).
//
// The trace comes from GET {root}/api/streams/{id}/trace (docs/protocol.md, "Other
// endpoints"; entry names in streamer/runtime/trace.py). The lanes are the ones
// `streamer trace` prints (streamer/clients/trace.py). No inline styles in markup (the demo's
// CSP): positions are set through the CSSOM; the look is trace-timeline.css.

/** the provider call's events (its lane) */
const PROVIDER_EVENTS = new Set(['provider_call_opened', 'provider_call_closed', 'first_token',
  'retry', 'waiting']);
/** where a scope's span starts and ends, by lane kind */
const SPANS = {
  generation: ['started', 'completed'],
  provider: ['provider_call_opened', 'provider_call_closed'],
  subscription: ['subscriber_joined', 'subscriber_left'],
};

/**
 * The lane (scope) of one entry: 'provider call', 'heartbeat', 'subscription <connection>'
 * (entries with a connection), else 'generation'.
 * @param {{event: string, connection?: string}} entry
 */
export function laneOf(entry) {
  if (PROVIDER_EVENTS.has(entry.event)) return 'provider call';
  if (entry.event === 'heartbeat') return 'heartbeat';
  if (entry.connection) return `subscription ${entry.connection}`;
  return 'generation';
}

/**
 * Why the stream or its provider call ended, if the entry says: a cancel's reason, an
 * error's code; else null.
 * @param {{event: string, reason?: string, code?: string, closed_by?: string}} entry
 * @returns {string|null}
 */
export function causeOf(entry) {
  const closed = entry.event === 'provider_call_closed' ? entry.closed_by : null;
  if (entry.event === 'cancel_requested' || entry.event === 'cancelled' || closed === 'cancel') {
    return entry.reason || 'cancelled';
  }
  if (entry.event === 'error' || closed === 'error') return entry.code || 'error';
  return null;
}

/** @param {string} lane */
function kindOf(lane) {
  if (lane.startsWith('subscription ')) return 'subscription';
  return lane === 'provider call' ? 'provider' : lane;
}

/** The lanes in order: generation, provider call, the subscriptions as they came, heartbeat. */
function lanesOf(entries) {
  const lanes = new Map([['generation', []], ['provider call', []]]);
  for (const entry of entries) {
    const lane = laneOf(entry);
    if (lane !== 'heartbeat') {
      if (!lanes.has(lane)) lanes.set(lane, []);
      lanes.get(lane).push(entry);
    }
  }
  lanes.set('heartbeat', entries.filter((e) => e.event === 'heartbeat'));
  return lanes;
}

/** @param {object} entry the entry's fields but its time and name, as `k=v` */
function detailText(entry) {
  return Object.entries(entry).filter(([k]) => k !== 't_ms' && k !== 'event')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {number} ms */
function msText(ms) {
  return `${ms.toLocaleString('en', { maximumFractionDigits: 1 })} ms`;
}

/** Spans where the lane's scope was open ([start, end] in ms; an open one runs to `endMs`). */
function spansOf(kind, entries, endMs) {
  const [open, close] = SPANS[kind] || [];
  const spans = [];
  let from = null;
  for (const entry of entries) {
    if (entry.event === open && from === null) from = entry.t_ms;
    if (entry.event === close && from !== null) {
      spans.push([from, entry.t_ms]);
      from = null;
    }
  }
  if (from !== null) spans.push([from, endMs]);
  return spans;
}

function laneElement(name, entries, endMs) {
  const kind = kindOf(name);
  const lane = el('div', `trace-lane trace-lane-${kind}`);
  lane.dataset.lane = name;
  lane.setAttribute('role', 'listitem');
  lane.append(el('div', 'trace-lane-name', name));
  const track = el('div', 'trace-track');
  const at = (ms) => `${endMs > 0 ? (100 * ms) / endMs : 0}%`;
  for (const [from, to] of spansOf(kind, entries, endMs)) {
    const span = el('div', 'trace-span');
    span.style.setProperty('left', at(from));
    span.style.setProperty('width', `calc(${at(to - from)} + 2px)`);
    track.append(span);
  }
  const labelled = new Set(); // a cause is named once per lane (cancel_requested, cancelled)
  for (const entry of entries) {
    const cause = causeOf(entry);
    const mark = el('span', cause ? 'trace-mark trace-cause-mark' : 'trace-mark');
    mark.dataset.event = entry.event;
    mark.style.setProperty('left', at(entry.t_ms));
    mark.title = `${msText(entry.t_ms)} · ${entry.event} ${detailText(entry)}`.trim();
    track.append(mark);
    if (cause && !labelled.has(cause)) {
      labelled.add(cause);
      const label = el('span', 'trace-cause', cause);
      label.dataset.event = entry.event;
      label.style.setProperty('left', at(entry.t_ms));
      track.append(label);
    }
  }
  if (!entries.length) track.append(el('span', 'trace-empty', `no ${name} entries`));
  lane.append(track);
  return lane;
}

/**
 * Draw a trace (the endpoint's answer) into `container`, replacing what it held.
 * @param {HTMLElement} container
 * @param {{stream_id: string, state: string, provider?: string, finish_reason?: string|null,
 *   trace: Array<{t_ms: number, event: string}>}} body
 */
export function renderTimeline(container, body) {
  const entries = body.trace || [];
  const endMs = Math.max(0, ...entries.map((e) => e.t_ms));
  const root = el('div', 'trace-timeline');
  root.dataset.stream = body.stream_id;
  const finish = body.finish_reason ? ` · finish ${body.finish_reason}` : '';
  root.append(el('div', 'trace-head',
    `stream ${body.stream_id} · ${body.state} · ${body.provider || ''}${finish}`));
  const lanes = el('div', 'trace-lanes');
  lanes.setAttribute('role', 'list');
  for (const [name, laneEntries] of lanesOf(entries)) {
    lanes.append(laneElement(name, laneEntries, endMs));
  }
  root.append(lanes);
  const axis = el('div', 'trace-axis');
  axis.append(el('span', '', '0 ms'), el('span', '', msText(endMs / 2)), el('span', '', msText(endMs)));
  root.append(axis);
  const list = el('details', 'trace-entries');
  list.append(el('summary', '', `${entries.length} entries`));
  const ol = el('ol', 'small');
  for (const entry of entries) {
    const cause = causeOf(entry);
    const item = el('li', cause ? 'trace-cause-entry' : '',
      `${msText(entry.t_ms)} · ${laneOf(entry)} · ${entry.event} ${detailText(entry)}`);
    ol.append(item);
  }
  list.append(ol);
  root.append(list);
  container.replaceChildren(root);
}

/**
 * Fetch a stream's trace.
 * @param {string} root where the server's routes are (a path prefix included)
 * @param {string} streamId
 * @param {string|null} token a bearer token, if the server asks for one
 */
export async function fetchTrace(root, streamId, token) {
  const response = await fetch(`${root}/api/streams/${encodeURIComponent(streamId)}/trace`,
    { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${body.code || `HTTP ${response.status}`}: ${body.message || ''}`.trim());
  }
  return body;
}

/**
 * Wire a button that opens the last stream's trace in `panel`.
 * @param {{button: HTMLElement, panel: HTMLElement, root: string,
 *   token: () => string|null, streamId: () => string|null}} options
 */
export function mountTraceTimeline({ button, panel, root, token, streamId }) {
  button.addEventListener('click', async () => {
    const id = streamId();
    panel.hidden = false;
    if (!id) {
      panel.replaceChildren(el('div', 'muted small', 'No stream yet: start one first.'));
      return;
    }
    panel.replaceChildren(el('div', 'muted small', `Loading the trace of ${id}…`));
    try {
      renderTimeline(panel, await fetchTrace(root, id, token()));
    } catch (err) {
      panel.replaceChildren(el('div', 'error', `Trace: ${err.message || err}`));
    }
  });
}
