// A `text/event-stream` parser (WHATWG HTML, "Server-sent events", §9.2.6) over text chunks,
// and a reader that feeds it a fetch Response. The client reads SSE with fetch rather than
// EventSource to send `Last-Event-ID` on its own reconnects, to see the `: ping` comments
// (liveness), and to read error statuses.

/**
 * One dispatched event: its type (`message` when none was given), its data lines joined by
 * `\n`, and the last event id seen so far (ids persist across events, as the spec says).
 * @typedef {{event: string, data: string, id: string|null}} SSEMessage
 */

/**
 * @typedef {object} SSEHandlers
 * @property {(message: SSEMessage) => void} onEvent an event was dispatched (a blank line)
 * @property {() => void} [onLine] any line, comments included (the server's heartbeat)
 * @property {(retryMs: number) => void} [onRetry] a `retry:` field with a valid number
 */

/** Incremental parser: {@link push} decoded text as it arrives, in pieces of any size. */
export class EventStreamParser {
  /** @param {SSEHandlers} handlers */
  constructor(handlers) {
    /** @private */
    this._handlers = handlers;
    /** @private text after the last complete line */
    this._buffer = '';
    /** @private */
    this._first = true;
    /** @private */
    this._type = '';
    /**
     * @private
     * @type {string[]}
     */
    this._data = [];
    /** @type {string|null} the last event id buffer */
    this.lastEventId = null;
  }

  /**
   * Feed the next piece of the stream's text.
   * @param {string} text
   */
  push(text) {
    let buffer = this._buffer + text;
    if (this._first && buffer.length) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      this._first = false;
    }
    let start = 0;
    const lineEnd = /\r\n|\r|\n/g;
    for (let m = lineEnd.exec(buffer); m; m = lineEnd.exec(buffer)) {
      // a CR at the very end may be the first half of a CRLF: wait for the next piece
      if (m[0] === '\r' && m.index + 1 === buffer.length) break;
      this._line(buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this._buffer = buffer.slice(start);
  }

  /**
   * @private
   * @param {string} line
   */
  _line(line) {
    this._handlers.onLine?.();
    if (line === '') {
      if (this._data.length) {
        this._handlers.onEvent({ event: this._type || 'message', data: this._data.join('\n'),
          id: this.lastEventId });
      }
      this._type = '';
      this._data = [];
      return;
    }
    if (line[0] === ':') return; // a comment: the server's heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this._type = value;
    else if (field === 'data') this._data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this._handlers.onRetry?.(Number(value));
  }
}

/**
 * Read a fetch Response's body to its end through an {@link EventStreamParser}.
 * @param {Response} response
 * @param {SSEHandlers} handlers
 * @returns {Promise<void>} resolves when the body ends; rejects on a network error or abort
 */
export async function readEventStream(response, handlers) {
  if (!response.body) throw new TypeError('the response has no body');
  const parser = new EventStreamParser(handlers);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(value);
  }
}
