"""Clients written in Python: ``terminal`` (``streamer stream``), over WebSocket."""
