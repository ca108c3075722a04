"""The pacer state machine alone: exact delivery times, no clock, no I/O."""

from __future__ import annotations

from itertools import pairwise

import pytest

from streamer.delivery.pacer import Pacer


def drive(pacer: Pacer, chars: list[int], *, until: float = 60.0,
          events: dict[float, object] | None = None) -> list[tuple[float, int]]:
    """Run the pacer as its shell would: ask at each deadline; return (time, count) frames."""
    events = dict(events or {})
    now, cursor, frames = 0.0, 0, []
    while cursor < len(chars) and now <= until:
        for t in sorted(list(events)):
            if t <= now + 1e-9:
                events.pop(t)(pacer, now)  # type: ignore[operator]
        count = pacer.take(now, iter(chars[cursor:]))
        if count:
            frames.append((round(now, 9), count))
            cursor += count
        deadline = pacer.next_deadline(cursor < len(chars))
        pending_event = min(events) if events else None
        if deadline is None:
            if pending_event is None:
                break
            now = pending_event
        else:
            now = max(now, deadline) if pending_event is None else min(max(now, deadline),
                                                                        pending_event)
    return frames


def test_fixed_rate_delivers_each_entry_on_time() -> None:
    pacer = Pacer("fixed", 20)  # 4-char entries at 20 cps: one every 0.2 s
    assert drive(pacer, [4] * 5) == [(0.0, 1), (0.2, 1), (0.4, 1), (0.6, 1), (0.8, 1)]


def test_frames_merge_entries_but_keep_the_rate() -> None:
    pacer = Pacer("fixed", 1000, frame_interval_s=0.05)
    frames = drive(pacer, [4] * 100)
    assert all(b - a >= 0.05 - 1e-9 for (a, _), (b, _) in pairwise(frames))
    assert sum(n for _, n in frames) == 100
    # 400 chars at 1000 cps: the last entry leaves at about 0.4 s, not 100 frames later
    assert frames[-1][0] == pytest.approx(0.4, abs=0.051)
    assert len(frames) < 15


def test_off_delivers_everything_per_frame() -> None:
    pacer = Pacer("off", 10)
    assert drive(pacer, [4] * 50) == [(0.0, 50)]


def test_pause_holds_and_resume_continues_without_burst() -> None:
    pacer = Pacer("fixed", 20)
    frames = drive(pacer, [4] * 4, events={
        0.1: lambda p, now: p.pause(),
        5.0: lambda p, now: p.resume(now),
    })
    # entry 1 at 0.0; paused from 0.1 to 5.0; then one entry per 0.2 s again
    assert frames == [(0.0, 1), (5.0, 1), (5.2, 1), (5.4, 1)]


def test_skip_delivers_all_now_then_unpaced() -> None:
    pacer = Pacer("fixed", 4)  # one 4-char entry per second
    frames = drive(pacer, [4] * 10, events={2.5: lambda p, now: p.skip()})
    assert frames == [(0.0, 1), (1.0, 1), (2.0, 1), (2.5, 7)]
    assert pacer.state == "skipping"


def test_live_speed_change_rescales_the_wait() -> None:
    pacer = Pacer("fixed", 4)  # 1 entry/s
    frames = drive(pacer, [4] * 4, events={0.5: lambda p, now: p.set_cps(8, now)})
    # the wait for entry 2 had 0.5 s left at 4 cps -> 0.25 s at 8 cps; then every 0.5 s
    assert frames == [(0.0, 1), (0.75, 1), (1.25, 1), (1.75, 1)]


def test_smooth_rises_with_backlog_to_bound_the_lag() -> None:
    pacer = Pacer("smooth", 10, max_lag_s=1.0)
    pacer.on_received(4000)
    frames = drive(pacer, [4] * 1000)
    # at 10 cps this would take 400 s; smooth keeps the lag near max_lag_s
    assert frames[-1][0] < 10


def test_progress_reports_backlog_and_eta() -> None:
    pacer = Pacer("fixed", 100)
    pacer.on_received(1000)
    assert pacer.take(0.0, iter([500, 500])) == 1
    progress = pacer.progress()
    assert (progress.received_chars, progress.delivered_chars, progress.backlog_chars) == \
        (1000, 500, 500)
    assert progress.eta_ms == 5000
    pacer.pause()
    assert pacer.progress().eta_ms is None


def test_invalid_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        Pacer("fixed", 0)


def test_a_late_take_carries_what_accrued_while_entries_waited() -> None:
    """Entries waiting for their time, and the shell asks late (a busy event loop): the
    frame carries everything due by now at the rate, so delivery keeps the rate under load;
    after an idle spell (nothing pending) pacing restarts without a burst."""
    pacer = Pacer("fixed", 120, frame_interval_s=0.033)
    entries = [4] * 200
    assert pacer.take(0.0, iter(entries)) == 1  # 4 chars: the next is due at 1/30 s
    assert pacer.next_deadline(True) == pytest.approx(0.033 + 0.0004, abs=0.001)
    late = pacer.take(0.5, iter(entries[1:]))  # asked 0.47 s late
    assert late == 15  # 0.5 s at 120 cps = 60 chars = 15 entries (1 + 14 accrued + due)
    assert pacer.delivered_chars == 64
    # the same lateness after idleness (everything sent) is no credit: no burst
    idle = Pacer("fixed", 120, frame_interval_s=0.033)
    assert idle.take(0.0, iter([4])) == 1
    assert idle.take(0.5, iter(entries)) == 1


def test_smooth_keeps_up_with_generation_when_every_take_is_late() -> None:
    """Generation at 80 chars/s, the shell able to ask only every 0.2 s (saturated): smooth
    pacing at 120 cps delivers as fast as the text arrives (the backlog stays bounded)."""
    pacer = Pacer("smooth", 120, frame_interval_s=0.033, max_lag_s=1.5)
    received = delivered = 0
    backlogs = []
    for step in range(1, 101):  # 20 s
        now = step * 0.2
        received = int(now * 80) // 4 * 4
        pacer.on_received(received)
        count = pacer.take(now, iter([4] * ((received - delivered) // 4)))
        delivered += 4 * count
        backlogs.append(received - delivered)
    assert max(backlogs[-50:]) <= 0.2 * 120 + 4, backlogs[-10:]
