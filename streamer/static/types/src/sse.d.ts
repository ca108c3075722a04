/**
 * Read a fetch Response's body to its end through an {@link EventStreamParser}.
 * @param {Response} response
 * @param {SSEHandlers} handlers
 * @returns {Promise<void>} resolves when the body ends; rejects on a network error or abort
 */
export function readEventStream(response: Response, handlers: SSEHandlers): Promise<void>;
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
    constructor(handlers: SSEHandlers);
    /** @private */
    private _handlers;
    /** @private text after the last complete line */
    private _buffer;
    /** @private */
    private _first;
    /** @private */
    private _type;
    /**
     * @private
     * @type {string[]}
     */
    private _data;
    /** @type {string|null} the last event id buffer */
    lastEventId: string | null;
    /**
     * Feed the next piece of the stream's text.
     * @param {string} text
     */
    push(text: string): void;
    /**
     * @private
     * @param {string} line
     */
    private _line;
}
/**
 * One dispatched event: its type (`message` when none was given), its data lines joined by
 * `\n`, and the last event id seen so far (ids persist across events, as the spec says).
 */
export type SSEMessage = {
    event: string;
    data: string;
    id: string | null;
};
export type SSEHandlers = {
    /**
     * an event was dispatched (a blank line)
     */
    onEvent: (message: SSEMessage) => void;
    /**
     * any line, comments included (the server's heartbeat)
     */
    onLine?: (() => void) | undefined;
    /**
     * a `retry:` field with a valid number
     */
    onRetry?: ((retryMs: number) => void) | undefined;
};
