"""The XSS corpus streamed into the real editor in Chromium, split several ways: no dialog
opens, no script runs, and nothing in the editor's DOM can run one (issue 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import browser, page  # noqa: F401 - the fixtures

pytestmark = pytest.mark.browser

XSS = (Path(__file__).parents[1] / "corpus" / "xss.md").read_text(encoding="utf-8")

#: everything in the editor that could run script: elements, handlers, URL schemes
DANGER = """(root) => {
    const bad = [];
    for (const el of root.querySelectorAll('*')) {
        const tag = el.tagName.toLowerCase();
        // KaTeX's own MathML rendering inside a math node (its attributes are still checked)
        const katex = tag === 'math' &&
            el.closest('[data-type="inline-math"], [data-type="block-math"]') !== null;
        if (['script', 'iframe', 'object', 'embed', 'svg', 'math', 'style', 'form', 'base',
             'meta', 'link'].includes(tag) && !katex) bad.push(tag);
        for (const attr of el.attributes) {
            const v = attr.value.replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
            if (attr.name.startsWith('on')) bad.push(`${tag}[${attr.name}]`);
            if (/^(javascript|vbscript|data|file):/.test(v)) bad.push(`${tag}[${attr.name}=${v}]`);
        }
    }
    return bad;
}"""


@pytest.mark.parametrize("delta_chars", [1, 3, 7, 64])
def test_the_xss_corpus_never_runs_script_in_the_editor(page: Any, delta_chars: int) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.evaluate("() => { window.__xssRan = false; }")
    page.evaluate("""([prompt, delta]) => window.streamerDemo.client.start({
        prompt, provider: 'echo', echo: {delta_chars: delta, interval_ms: 0},
        pacing: {mode: 'off'}})""", [XSS, delta_chars])
    page.wait_for_function("() => document.body.dataset.streamState === 'complete'",
                           timeout=60_000)
    page.wait_for_timeout(300)  # let any late onerror/onload fire
    result = page.evaluate("""(danger) => ({
        bad: (new Function('return ' + danger))()(document.getElementById('editor')),
        selfCheck: (new Function('return ' + danger))()(new DOMParser().parseFromString(
            '<a href=" JavaScript:x">a</a><img src=x onerror=1><math></math>' +
            '<span data-type="inline-math"><math></math></span>', 'text/html').body),
        ran: window.__xssRan,
        text: document.getElementById('editor').innerText,
        equal: window.streamerDemo.lastCheck.equal,
    })""", DANGER)
    assert result["selfCheck"] == ["a[href=javascript:x]", "img[onerror]", "math"]  # it sees
    assert dialogs == [] and result["ran"] is False
    assert result["bad"] == []
    assert result["equal"]  # the streamed editor equals the final HTML
    assert "raw anchor" in result["text"] and "plain" in result["text"]  # text kept
