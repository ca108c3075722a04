"""The runtime: the lifetimes, in Trio (``docs/architecture.md``, "Lifetimes").

=================  ===========================================================================
module             owns
=================  ===========================================================================
``registry``       every session, the shared objects built once, the replay window, idle
                   sessions, drain; the host of sessions and connections
``session``        a conversation: history, queue, runner task, connections, holds
``stream``         one answer's lifetime: cancel scope, subscribers, grace period,
                   backpressure, persistence, trace
``generation``     provider events → log entries (a pure step, the retry policy) and the
                   thin loop around them
``connection``     one socket's lifetime: follower, resume, control table
``outbox``         a connection's queue, its only writer, its clock (heartbeat, stuck writes)
``trace``          what happened to a stream, when
``waiter``         the re-armable wake-up flag (a wait may have a deadline, on ``timers``)
``timers``         the process's timers: one heap, one system task (no scope per deadline)
=================  ===========================================================================

Imports (no cycles): ``generation`` imports none of the others; ``waiter`` imports
``timers``; ``stream`` imports ``generation``, ``trace``, ``waiter``; ``session`` imports
``stream``; ``connection`` imports ``session`` and ``stream``; ``registry`` imports
``session`` and ``stream``. Upward, they see each other only through narrow protocols: a
stream its session as ``StreamOwner`` and the process as ``StreamServices``; sessions and
connections the registry as ``session.Host``; a session its connections as
``session.Follower``; a subscription its stream as ``delivery.subscription.Followed``.
"""
