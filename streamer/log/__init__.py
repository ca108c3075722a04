"""The stream log stage: one stream's seq-numbered history, and the resume decision over it.

=================  ===========================================================================
module             owns
=================  ===========================================================================
``stream_log``     the :class:`StreamLog` interface (a ``Protocol``), its in-memory engine, the
                   readers' cursors, typed entries
``resume``         ``plan(cursor, log, epoch, stored) -> Exact | Gap | Stored | NotFound``
=================  ===========================================================================

Pure: no I/O, no Trio.
"""
