/** @typedef {(...args: any[]) => void} Listener */
export class Emitter {
    /**
     * @private
     * @type {Map<string, Set<Listener>>}
     */
    private _handlers;
    /**
     * @param {string} type
     * @param {Listener} fn
     * @returns {() => void} unsubscribe
     */
    on(type: string, fn: Listener): () => void;
    /**
     * @param {string} type
     * @param {Listener} fn
     */
    off(type: string, fn: Listener): void;
    /**
     * Listen to the next event of `type` only.
     * @param {string} type
     * @param {Listener} fn
     * @returns {() => void} unsubscribe
     */
    once(type: string, fn: Listener): () => void;
    /**
     * Call every listener of `type` with `args` (a snapshot of the listeners taken now).
     * @param {string} type
     * @param {...any} args
     */
    emit(type: string, ...args: any[]): void;
}
export type Listener = (...args: any[]) => void;
