// The block ops of protocol version 2, applied to a list of HTML blocks exactly as the server's
// streamer/render/ops.py applies them (escape_text, split_trailer, apply_op). Pure: no DOM.

/**
 * One `chunk` op (docs/protocol.md, "Block ops"): `append` a block, `replace` one, insert
 * plain `text` at a block's last text position, or `splice` (its last `trim` characters give
 * way to `html`).
 * @typedef {object} BlockOp
 * @property {'append'|'replace'|'text'|'splice'|string} op
 * @property {number} block index of the block
 * @property {string|null} [html] `append`, `replace`, `splice`: sanitized HTML
 * @property {string|null} [text] `text`: plain text, unescaped
 * @property {number} [trim] `splice`: how many (ASCII) characters at the block's end give way
 */

/** One closing tag, anchored (a block's trailer is a run of these and newlines). */
const CLOSING_TAG_RE = /^<\/[a-zA-Z][a-zA-Z0-9]*>$/;

/** @type {Record<string, string>} */
const TEXT_ESCAPES = { '&': '&amp;', '\u00a0': '&nbsp;', '<': '&lt;', '>': '&gt;' };

/**
 * Escape plain text exactly as the server's sanitizer (html5ever) serializes a text node:
 * `&`, U+00A0, `<` and `>`; quotes are left alone. Mirrors `streamer.render.ops.escape_text`.
 * @param {string} text
 * @returns {string}
 */
export function escapeText(text) {
  return text.replace(/[&\u00a0<>]/g, (c) => TEXT_ESCAPES[c]);
}

/**
 * Split a block's HTML at its *last text position*: `[head, trailer]` where `trailer` is the
 * longest suffix made only of closing tags (`</name>`) and newlines. Scans backwards, so the
 * cost is the trailer's length. Mirrors `streamer.render.ops.split_trailer`.
 * @param {string} html
 * @returns {[string, string]}
 */
export function splitTrailer(html) {
  let cut = html.length;
  while (cut > 0) {
    const c = html[cut - 1];
    if (c === '\n') {
      cut -= 1;
      continue;
    }
    if (c !== '>') break;
    const start = cut >= 2 ? html.lastIndexOf('<', cut - 2) : -1;
    if (start < 0 || !CLOSING_TAG_RE.test(html.slice(start, cut))) break;
    cut = start;
  }
  return [html.slice(0, cut), html.slice(cut)];
}

/**
 * The `text` op on one block: `text` (plain, unescaped) inserted at the last text position.
 * @param {string} html
 * @param {string} text
 * @returns {string}
 */
export function appendText(html, text) {
  const [head, trailer] = splitTrailer(html);
  return head + escapeText(text) + trailer;
}

/**
 * Apply one op to a block list in place, exactly as `streamer.render.ops.apply_op`.
 * @param {string[]} blocks
 * @param {BlockOp} op
 * @returns {void}
 * @throws {RangeError} the op does not fit the list (a correct server never causes this)
 */
export function applyOp(blocks, op) {
  const i = op.block;
  const inList = i >= 0 && i < blocks.length;
  if (op.op === 'append') {
    if (i !== blocks.length || typeof op.html !== 'string') {
      throw new RangeError(`append at ${i} to a list of ${blocks.length} blocks`);
    }
    blocks.push(op.html);
  } else if (op.op === 'replace') {
    if (!inList || typeof op.html !== 'string') {
      throw new RangeError(`replace of block ${i} in a list of ${blocks.length}`);
    }
    blocks[i] = op.html;
  } else if (op.op === 'text') {
    if (!inList || typeof op.text !== 'string') {
      throw new RangeError(`text into block ${i} in a list of ${blocks.length}`);
    }
    blocks[i] = appendText(blocks[i], op.text);
  } else if (op.op === 'splice') {
    // the block's last `trim` characters (ASCII: the same count in UTF-16) give way to `html`
    const trim = op.trim;
    if (!inList || typeof op.html !== 'string' || typeof trim !== 'number'
        || !Number.isInteger(trim) || trim < 0 || trim > blocks[i].length) {
      throw new RangeError(`splice of block ${i} in a list of ${blocks.length}`);
    }
    blocks[i] = blocks[i].slice(0, blocks[i].length - trim) + op.html;
  } else {
    throw new RangeError(`unknown op ${JSON.stringify(op.op)}`);
  }
}
