"""The soak's warm-up (``bench/soak.py``) lasts until the server's bounded structures are
full: the replay window's finished logs, the idle sessions, the full collections."""

from __future__ import annotations

from bench import soak


def test_the_warm_up_ends_two_collection_intervals_after_the_replay_window_is_full() -> None:
    bound = soak.MAX_FINISHED_LOGS
    answers = [(float(t), t * 25) for t in range(120)]  # 25 answers a second
    full_at = next(t for t, count in answers if count >= bound)  # whole seconds here
    assert soak.warmup_end(answers) == full_at + 2 * soak.GC_FULL_INTERVAL_S


def test_the_warm_up_waits_for_idle_sessions_when_the_window_fills_first() -> None:
    answers = [(float(t), soak.MAX_FINISHED_LOGS) for t in range(60)]
    assert soak.warmup_end(answers) == (soak.SESSION_IDLE_S + 1.0
                                        + 2 * soak.GC_FULL_INTERVAL_S)


def test_a_soak_that_never_fills_the_window_says_its_growth_means_little() -> None:
    assert soak.warmup_end([(float(t), 10) for t in range(30)]) is None
    assert "not meaningful" in soak.warmup_note(None, 30.0)
    assert "TOO SHORT" in soak.warmup_note(100.0, 120.0)
    assert "TOO SHORT" not in soak.warmup_note(100.0, 600.0)
