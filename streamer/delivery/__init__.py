"""The delivery stage: per connection and stream, log cursor → pacer → merged events → send.

=================  ===========================================================================
module             owns
=================  ===========================================================================
``pacer``          how many entries are due now (GCRA; pause, skip, speed). Pure
``merge``          a batch of due entries → as few ``chunk``/stream events as possible. Pure
``subscription``   the Trio loop around them (and only that): waits for entries, a deadline or
                   a control; sends ``stream_start``, ``snapshot``, ``progress`` and the end
=================  ===========================================================================
"""
