/**
 * Escape plain text exactly as the server's sanitizer (html5ever) serializes a text node:
 * `&`, U+00A0, `<` and `>`; quotes are left alone. Mirrors `streamer.render.ops.escape_text`.
 * @param {string} text
 * @returns {string}
 */
export function escapeText(text: string): string;
/**
 * Split a block's HTML at its *last text position*: `[head, trailer]` where `trailer` is the
 * longest suffix made only of closing tags (`</name>`) and newlines. Scans backwards, so the
 * cost is the trailer's length. Mirrors `streamer.render.ops.split_trailer`.
 * @param {string} html
 * @returns {[string, string]}
 */
export function splitTrailer(html: string): [string, string];
/**
 * The `text` op on one block: `text` (plain, unescaped) inserted at the last text position.
 * @param {string} html
 * @param {string} text
 * @returns {string}
 */
export function appendText(html: string, text: string): string;
/**
 * Apply one op to a block list in place, exactly as `streamer.render.ops.apply_op`.
 * @param {string[]} blocks
 * @param {BlockOp} op
 * @returns {void}
 * @throws {RangeError} the op does not fit the list (a correct server never causes this)
 */
export function applyOp(blocks: string[], op: BlockOp): void;
/**
 * One `chunk` op (docs/protocol.md, "Block ops"): `append` a block, `replace` one, insert
 * plain `text` at a block's last text position, or `splice` (its last `trim` characters give
 * way to `html`).
 */
export type BlockOp = {
    op: "append" | "replace" | "text" | "splice" | string;
    /**
     * index of the block
     */
    block: number;
    /**
     * `append`, `replace`, `splice`: sanitized HTML
     */
    html?: string | null | undefined;
    /**
     * `text`: plain text, unescaped
     */
    text?: string | null | undefined;
    /**
     * `splice`: how many (ASCII) characters at the block's end give way
     */
    trim?: number | undefined;
};
