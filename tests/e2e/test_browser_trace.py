"""The demo page's trace timeline in Chromium, under the page's own Content-Security-Policy:
a stream paused (the connection idles: heartbeats), then stopped from the page; its trace
opens as a timeline with a lane for each scope (the generation, the provider call, the
page's subscription, the heartbeat) and the cause, ``stop from client``, marked on the
generation's and the provider call's lanes (a screenshot is kept in tests/artifacts/).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import RICH, _poll, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture(scope="module", autouse=True)
def quick_heartbeats() -> Iterator[None]:
    """The module's server (``server_process`` copies this environment when it starts)
    sends a heartbeat after 100 ms of quiet, and progress events rarely."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STREAMER_SERVER_HEARTBEAT_INTERVAL_S", "0.1")
        env.setenv("STREAMER_PACING_PROGRESS_INTERVAL_MS", "5000")
        yield


def test_the_trace_timeline_of_a_stopped_stream(browser: Any,  # noqa: F811
                                                server_process: Any) -> None:
    context = browser.new_context()  # the page's CSP applies: no bypass
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(server_process.base_url + "/")
        _poll(page, "window.streamerDemo && streamerDemo.client.state === 'connected'")
        page.click("#btn-trace")  # before any stream: the panel says so
        _poll(page, "!document.getElementById('trace-panel').hidden")
        assert "No stream yet" in page.text_content("#trace-panel")
        page.select_option("#provider", "echo")
        page.select_option("#pacing-mode", "fixed")
        page.fill("#prompt", RICH * 4)
        page.click("#btn-start")
        _poll(page, "streamerDemo.editor.state.doc.textContent.length > 20")
        page.click("#btn-pause")
        _poll(page, "document.getElementById('delivery-state').textContent.includes('paused')")
        page.wait_for_timeout(800)  # quiet: the connection sends heartbeats
        page.click("#btn-stop")
        _poll(page, "document.body.dataset.streamState === 'complete'")
        assert page.evaluate("streamerDemo.lastComplete.finish_reason") == "cancelled"
        stream_id = page.evaluate("streamerDemo.lastStreamId")

        page.click("#btn-trace")
        _poll(page, "document.querySelector('#trace-panel .trace-timeline') !== null")
        timeline = page.evaluate("""() => {
            const root = document.querySelector('#trace-panel .trace-timeline');
            const lanes = [...root.querySelectorAll('.trace-lane')].map((lane) => ({
              name: lane.dataset.lane,
              marks: [...lane.querySelectorAll('.trace-mark')].map((m) => m.dataset.event),
              spans: lane.querySelectorAll('.trace-span').length,
              causes: [...lane.querySelectorAll('.trace-cause')].map((c) => c.textContent),
              causeMarks: [...lane.querySelectorAll('.trace-cause-mark')].map(
                (m) => m.dataset.event),
              visible: lane.getBoundingClientRect().height > 0,
            }));
            return {stream: root.dataset.stream, lanes};
        }""")
        ARTIFACTS.mkdir(exist_ok=True)  # the timeline as a person sees it
        page.locator("#trace-panel").screenshot(path=str(ARTIFACTS / "trace-timeline.png"))
        context.close()
    except BaseException:
        context.close()
        raise
    assert timeline["stream"] == stream_id
    lanes = {lane["name"]: lane for lane in timeline["lanes"]}
    subscriptions = [name for name in lanes if name.startswith("subscription c_")]
    assert list(lanes) == ["generation", "provider call", *subscriptions, "heartbeat"]
    assert len(subscriptions) == 1 and all(lane["visible"] for lane in lanes.values())
    generation, provider = lanes["generation"], lanes["provider call"]
    subscription, heartbeat = lanes[subscriptions[0]], lanes["heartbeat"]
    assert {"queued", "started", "cancel_requested", "cancelled", "completed"} <= set(
        generation["marks"])
    assert generation["causes"] == ["stop from client"]  # named once, marked twice
    assert generation["causeMarks"] == ["cancel_requested", "cancelled"]
    assert provider["causeMarks"] == ["provider_call_closed"]
    assert provider["marks"][0] == "provider_call_opened"
    assert provider["marks"][-1] == "provider_call_closed"
    assert provider["causes"] == ["stop from client"] and provider["spans"] == 1
    assert "subscriber_joined" in subscription["marks"]
    assert "control" in subscription["marks"] and subscription["spans"] == 1
    assert heartbeat["marks"] and set(heartbeat["marks"]) == {"heartbeat"}
    assert not problems, problems
