"""The terminal client, ``streamer stream``: see :mod:`streamer.clients.terminal.link`."""
