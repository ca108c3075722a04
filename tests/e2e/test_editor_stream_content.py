"""The Tiptap extension StreamContent (streamer/static/stream-content.js) in Chromium, fed real
ops from the chunker through its commands: the user edits elsewhere while an answer streams,
one undo removes the whole answer, the reveal modes end exact, and everything the server can
emit survives setContent.

The page is the demo (served from ``streamer/static`` by a stdlib HTTP server, its client
closed); the fixtures are test_static_bundle's.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from streamer.render.markdown import Renderer
from streamer.render.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS
from tests.e2e.test_static_bundle import (  # noqa: F401 - the fixtures
    NESTED_MD,
    RICH_MD,
    _chunk_events,
    browser,
    page,
    static_url,
)

pytestmark = pytest.mark.browser

#: feed events[a:b] through insertStreamChunk, one animation frame after each `frames[i]`
_FEED_JS = """async ([events, frames]) => {
  const ed = streamerDemo.editor;
  for (let i = 0; i < events.length; i++) {
    ed.commands.insertStreamChunk(events[i]);
    if (frames[i]) await new Promise(r => requestAnimationFrame(r));
  }
  await new Promise(r => requestAnimationFrame(r));
}"""

#: the top-level paragraph whose text starts with `prefix`: put the caret at its end
_CARET_AT_END_OF_JS = """(prefix) => {
  const ed = streamerDemo.editor;
  let at = null;
  ed.state.doc.forEach((node, offset) => {
    if (at === null && node.type.name === 'paragraph' && node.textContent.startsWith(prefix))
      at = offset + node.nodeSize - 1;
  });
  if (at === null) throw new Error('no paragraph ' + prefix);
  ed.chain().focus().setTextSelection(at).run();
  return at;
}"""


def _set_doc(page: Any, html: str) -> None:  # noqa: F811
    page.evaluate("""(html) => streamerDemo.editor.chain()
        .command(({tr}) => { tr.setMeta('addToHistory', false); return true; })
        .setContent(html).run()""", html)


def _fresh(page: Any, html: str) -> str:  # noqa: F811
    return page.evaluate("(html) => streamerDemo.freshEditorHTML(html)", html)


def test_the_user_types_elsewhere_while_an_answer_streams(page: Any) -> None:  # noqa: F811
    """The answer starts at the caret in the middle of a paragraph (which splits there); the
    user types with the real keyboard after it and before it mid-stream, and tries to type into
    the answer. Both texts end where they belong, the answer equals the server's HTML, the
    attempt inside the answer changed nothing; one Ctrl+Z removes the whole answer (the split
    paragraph joined again, the typing kept), Ctrl+Shift+Z restores it."""
    events, html = _chunk_events(RICH_MD.read_text(), random.Random(7))
    _set_doc(page, "<p>Before</p><p>Middle</p><p>After</p>")
    page.evaluate("""() => {
      const ed = streamerDemo.editor;
      ed.chain().focus().setTextSelection(1 + 'Before'.length + 2 + 'Mid'.length).run();
      ed.commands.startStream();  // at the selection
    }""")
    thirds = [events[: len(events) // 3], events[len(events) // 3: 2 * len(events) // 3],
              events[2 * len(events) // 3:]]
    rng = random.Random(3)
    page.evaluate(_FEED_JS, [thirds[0], [rng.random() < 0.5 for _ in thirds[0]]])
    assert page.evaluate("streamerDemo.editor.storage.streamContent.active")
    page.evaluate(_CARET_AT_END_OF_JS, "After")
    page.keyboard.type(" one")
    page.evaluate(_FEED_JS, [thirds[1], [rng.random() < 0.5 for _ in thirds[1]]])
    page.evaluate(_CARET_AT_END_OF_JS, "Before")
    page.keyboard.type(" two")
    # into the answer's first paragraph: the extension filters the change out
    page.evaluate("""() => {
      const ed = streamerDemo.editor;
      const { from } = ed.storage.streamContent.session.range();
      ed.chain().focus().setTextSelection(from + 3).run();
    }""")
    page.keyboard.type("X")
    page.evaluate(_FEED_JS, [thirds[2], [rng.random() < 0.5 for _ in thirds[2]]])
    page.evaluate("(html) => streamerDemo.editor.commands.finishStream({html})", html)

    got = page.evaluate("streamerDemo.editor.getHTML()")
    assert got == _fresh(page, f"<p>Before two</p><p>Mid</p>{html}<p>dle</p><p>After one</p>")
    assert page.evaluate("document.querySelectorAll('#editor [data-streaming], "
                         "#editor .stream-caret').length") == 0
    page.evaluate("streamerDemo.editor.commands.focus()")
    page.keyboard.press("Control+z")
    assert page.evaluate("streamerDemo.editor.getHTML()") == _fresh(
        page, "<p>Before two</p><p>Middle</p><p>After one</p>")
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate("streamerDemo.editor.getHTML()") == got


@pytest.mark.parametrize("at", ["end", "replace-range", "empty-paragraph"])
def test_placements_and_one_undo_step(page: Any, at: str) -> None:  # noqa: F811
    """Appended at the end, replacing a selected range across two paragraphs, replacing the
    empty paragraph the caret is in: the result is exact, one undo restores the original."""
    events, html = _chunk_events(NESTED_MD, random.Random(11))
    original = "<p>Alpha beta</p><p>gamma delta</p><p></p><p>omega</p>"
    _set_doc(page, original)
    page.evaluate("""(at) => {
      const ed = streamerDemo.editor;
      if (at === 'end') ed.commands.startStream({at: 'end'});
      // from after 'Alpha' to after 'gamma ': the answer replaces ' beta</p><p>gamma '
      if (at === 'replace-range') ed.commands.startStream({at: {from: 6, to: 19}});
      if (at === 'empty-paragraph') {
        ed.commands.setTextSelection(26);
        ed.commands.startStream();
      }
    }""", at)
    page.evaluate(_FEED_JS, [events, [i % 3 == 0 for i in range(len(events))]])
    page.evaluate("(html) => streamerDemo.editor.commands.finishStream({html})", html)
    expected = {
        "end": original + html,
        "replace-range": f"<p>Alpha</p>{html}<p>delta</p><p></p><p>omega</p>",
        "empty-paragraph": f"<p>Alpha beta</p><p>gamma delta</p>{html}<p>omega</p>",
    }[at]
    got = page.evaluate("streamerDemo.editor.getHTML()")
    assert got == _fresh(page, expected)
    assert page.evaluate("streamerDemo.editor.commands.undo()")
    assert page.evaluate("streamerDemo.editor.getHTML()") == _fresh(page, original)
    assert not page.evaluate("streamerDemo.editor.can().undo()")  # one step, nothing else
    assert page.evaluate("streamerDemo.editor.commands.redo()")
    assert page.evaluate("streamerDemo.editor.getHTML()") == got


@pytest.mark.parametrize("reveal", ["none", "fade", "typewriter"])
def test_reveal_modes_decorate_and_end_exact(page: Any, reveal: str) -> None:  # noqa: F811
    """Mid-stream: a caret at the streaming end, data-streaming on the open block, the reveal
    class of the mode; at the end: no decoration left and the editor equals the final HTML."""
    events, html = _chunk_events(RICH_MD.read_text(), random.Random(5))
    _set_doc(page, "<p></p>")
    page.evaluate("(mode) => { streamerDemo.setReveal(mode);"
                  " streamerDemo.editor.commands.startStream({at: 'replace'}); }", reveal)
    half = len(events) // 2
    page.evaluate(_FEED_JS, [events[:half], [True] * half])
    mid = page.evaluate("""() => {
      const root = document.getElementById('editor');
      return {caret: root.querySelectorAll('.stream-caret').length,
              open: root.querySelectorAll('[data-streaming="true"]').length,
              fade: root.querySelectorAll('.stream-reveal-fade').length,
              hidden: root.querySelectorAll('.stream-reveal-hidden').length};
    }""")
    assert mid["caret"] == 1
    assert mid["open"] >= 1
    if reveal == "fade":
        assert mid["fade"] >= 1
    if reveal == "typewriter":
        # a burst: everything arrives in one frame, then is uncovered over the next frames
        page.evaluate("""([events]) => { for (const ev of events)
            streamerDemo.editor.commands.insertStreamChunk(ev); }""", [events[half:]])
        page.wait_for_function("document.querySelectorAll('#editor .stream-reveal-hidden')"
                               ".length > 0", timeout=5000)
        page.wait_for_function("document.querySelectorAll('#editor .stream-reveal-hidden')"
                               ".length === 0", timeout=5000)
    else:
        page.evaluate(_FEED_JS, [events[half:], [True] * (len(events) - half)])
    page.evaluate("(html) => streamerDemo.editor.commands.finishStream({html})", html)
    end = page.evaluate("""() => ({html: streamerDemo.editor.getHTML(),
        decorated: document.querySelectorAll('#editor .stream-caret, #editor [data-streaming],'
          + ' #editor .stream-reveal-fade, #editor .stream-reveal-hidden').length})""")
    assert end["decorated"] == 0
    assert end["html"] == _fresh(page, html)
    page.evaluate("streamerDemo.setReveal('fade')")


def test_pause_holds_frames_skip_shows_them_clear_discards(page: Any) -> None:  # noqa: F811
    events, html = _chunk_events(RICH_MD.read_text(), random.Random(9))
    _set_doc(page, "<p>Keep me</p>")
    page.evaluate("streamerDemo.editor.commands.startStream({at: 'end'})")
    page.evaluate(_FEED_JS, [events[:10], [True] * 10])
    shown = page.evaluate("streamerDemo.editor.getHTML()")
    assert page.evaluate("streamerDemo.editor.commands.pauseStream()")
    page.evaluate(_FEED_JS, [events[10:], [True] * (len(events) - 10)])
    assert page.evaluate("streamerDemo.editor.getHTML()") == shown  # held while paused
    assert page.evaluate("streamerDemo.editor.storage.streamContent.paused")
    assert page.evaluate("streamerDemo.editor.commands.skipStream()")
    assert page.evaluate("streamerDemo.editor.getHTML()") == _fresh(page, "<p>Keep me</p>" + html)
    assert page.evaluate("streamerDemo.editor.commands.clearStreamBuffer()")
    assert page.evaluate("streamerDemo.editor.getHTML()") == "<p>Keep me</p>"
    assert not page.evaluate("streamerDemo.editor.storage.streamContent.active")
    assert not page.evaluate("streamerDemo.editor.can().undo()")  # discarded: nothing to undo
    # without a stream the commands say so
    assert not page.evaluate("streamerDemo.editor.commands.insertStreamChunk({seq: 1})")
    assert not page.evaluate("streamerDemo.editor.commands.finishStream()")


# --------------------------------------------------------------------------- schema agreement

#: One sample per element and attribute the server can emit, in the sanitizer's own output
#: form (checked below). Math and task lists use Tiptap's formats (@tiptap/extension-mathematics
#: InlineMath/BlockMath, @tiptap/extension-list TaskList/TaskItem parse rules).
SAMPLES = [
    "<h1>h1</h1>", "<h2>h2</h2>", "<h3>h3</h3>", "<h4>h4</h4>", "<h5>h5</h5>", "<h6>h6</h6>",
    "<p>a <strong>b</strong> <em>c</em> <del>d</del> <s>e</s> <code>f</code> g<br>h</p>",
    '<p><a href="https://e.example/x?y=1&amp;z=2" title="t" rel="noopener noreferrer nofollow">'
    "link</a> and <a href=\"mailto:a@b.example\" rel=\"noopener noreferrer nofollow\">mail</a></p>",
    '<pre><code class="language-python">x = 1\nif x &lt; 2:\n    pass</code></pre>',
    "<pre><code>plain</code></pre>",
    "<blockquote>\n<p>q</p>\n<blockquote>\n<p>nested</p>\n</blockquote>\n</blockquote>",
    "<ul>\n<li>a</li>\n<li>b\n<ul>\n<li>c</li>\n</ul>\n</li>\n</ul>",
    '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>',
    "<ol>\n<li>\n<p>loose</p>\n<p>second</p>\n</li>\n</ol>",
    "<hr>",
    "<table>\n<thead>\n<tr>\n<th>h1</th>\n<th>h2</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n"
    "<td>1</td>\n<td><strong>2</strong></td>\n</tr>\n</tbody>\n</table>",
    '<table>\n<tbody>\n<tr>\n<th colspan="2" rowspan="1">head</th>\n</tr>\n<tr>\n'
    '<td colspan="2">wide</td>\n</tr>\n<tr>\n<td rowspan="1">a</td>\n'
    "<td>b</td>\n</tr>\n</tbody>\n</table>",
    # math and task lists (Tiptap's formats)
    '<p>inline <span data-type="inline-math" data-latex="x^2 + \\frac{a}{b}"></span> math</p>',
    '<div data-type="block-math" data-latex="\\sum_{i=1}^{n} x_i"></div>',
    '<ul data-type="taskList">\n<li data-type="taskItem" data-checked="true"><p>done</p></li>\n'
    '<li data-type="taskItem" data-checked="false"><p>todo <em>x</em></p></li>\n</ul>',
    # a tight task list: the item's inline content without a paragraph (as for <li>)
    '<ul data-type="taskList">\n<li data-type="taskItem" data-checked="false">tight <code>c</code>'
    '\n<ul data-type="taskList">\n<li data-type="taskItem" data-checked="true">nested</li>\n'
    '</ul>\n</li>\n</ul>',
]

#: A canonical form of editor / server HTML: tags with their meaningful attributes and text,
#: where the editor's representation differs only in form (a list item's or cell's implicit
#: paragraph, thead/tbody/colgroup wrappers, <del> as Strike's <s>, the task item's checkbox
#: markup, Link's target, default colspan/rowspan, attribute order, inter-block newlines,
#: KaTeX's rendering).
_CANON_JS = """(html) => {
  const KEEP = {a: ['href', 'title'], ol: ['start'], th: ['colspan', 'rowspan'],
                td: ['colspan', 'rowspan'], code: ['class'], span: ['data-type', 'data-latex'],
                div: ['data-type', 'data-latex'], ul: ['data-type'],
                li: ['data-type', 'data-checked']};
  const DROP = new Set(['thead', 'tbody', 'colgroup', 'col', 'label', 'input']);
  const out = [];
  const walk = (node, parent) => {
    for (const child of [...node.childNodes]) {
      if (child.nodeType === 3) {
        const inPre = child.parentElement && child.parentElement.closest('pre');
        const t = inPre ? child.data : child.data.replace(/\\n/g, '');
        if (t) out.push('#' + t);
        continue;
      }
      if (child.nodeType !== 1) continue;
      const tag = {del: 's'}[child.tagName.toLowerCase()] || child.tagName.toLowerCase();
      if (DROP.has(tag) || (tag === 'span' && !child.hasAttribute('data-type'))) continue;
      if (child.hasAttribute('data-latex')) {  // an atom: its attributes are its content
        out.push(`<${tag} ${child.getAttribute('data-type')} ${child.getAttribute('data-latex')}>`);
        continue;
      }
      const isTaskBody = tag === 'div' && parent === 'taskItem';
      const onlyPara = tag === 'p' && ['li', 'th', 'td', 'taskItem'].includes(parent) &&
        [...child.parentElement.children].filter(e => e.tagName === 'P').length === 1;
      if (isTaskBody || onlyPara) {
        walk(child, parent);
        continue;
      }
      const attrs = (KEEP[tag] || []).filter(a => child.hasAttribute(a))
        .filter(a => !(['colspan', 'rowspan'].includes(a) && child.getAttribute(a) === '1'))
        .map(a => `${a}=${child.getAttribute(a)}`);
      out.push(`<${tag}${attrs.length ? ' ' + attrs.join(' ') : ''}>`);
      walk(child, child.getAttribute('data-type') === 'taskItem' ? 'taskItem' : tag);
      out.push(`</${tag}>`);
    }
  };
  walk(new DOMParser().parseFromString(html, 'text/html').body, 'body');
  return out;
}"""


def test_samples_cover_the_allowlist_and_are_what_the_sanitizer_emits() -> None:
    tags = set()
    attributes = set()
    import re

    for sample in SAMPLES:
        tags |= set(re.findall(r"<([a-z][a-z0-9]*)", sample))
        for tag, attrs in re.findall(r"<([a-z][a-z0-9]*)((?:\s[^>]*)?)>", sample):
            attributes |= {(tag, a) for a in re.findall(r"\s([a-z-]+)=", attrs)}
    assert ALLOWED_TAGS <= tags, f"no sample for {sorted(ALLOWED_TAGS - tags)}"
    wanted = {(tag, a) for tag, names in ALLOWED_ATTRIBUTES.items() for a in names}
    assert wanted <= attributes, f"no sample for {sorted(wanted - attributes)}"
    renderer = Renderer()
    for sample in SAMPLES:
        sample_tags = set(re.findall(r"<([a-z][a-z0-9]*)", sample))
        if sample_tags <= renderer.allowed_tags and "data-" not in sample:
            assert renderer.sanitize(sample) == sample, sample


def test_everything_the_server_can_emit_survives_set_content(page: Any) -> None:  # noqa: F811
    """setContent(sample) then getHTML() keeps every element, attribute and character (in the
    canonical form above), alone and all together, streamed or not."""
    for sample in [*SAMPLES, "\n".join(SAMPLES)]:
        got = page.evaluate(f"(html) => ({_CANON_JS})(streamerDemo.freshEditorHTML(html))", sample)
        want = page.evaluate(f"(html) => ({_CANON_JS})(html)", sample)
        assert got == want, sample
    # the rendered math is KaTeX's (MathML), and the task items are checkboxes
    _set_doc(page, "\n".join(SAMPLES))
    shown = page.evaluate("""() => {
      const root = document.getElementById('editor');
      return {math: root.querySelectorAll('[data-type="inline-math"] math, '
                + '[data-type="block-math"] math').length,
              checked: [...root.querySelectorAll('ul[data-type="taskList"] input[type=checkbox]')]
                .map(i => i.checked)};
    }""")
    assert shown == {"math": 2, "checked": [True, False, False, True]}
