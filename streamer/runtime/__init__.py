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
``connection``     one socket's lifetime: outbox, writer, heartbeat, follower, control table
``trace``          what happened to a stream, when
``waiter``         the re-armable wake-up flag
=================  ===========================================================================

Import order (no cycles): waiter, trace → generation → stream → session → connection →
registry. Only the registry knows every other module; the others see each other through
narrow protocols (``StreamOwner``, ``StreamServices``, ``Host``, ``Follower``, and
``delivery.subscription.Followed``).
"""
