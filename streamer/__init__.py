"""streamer: stream LLM answers into rich-text editors over WebSocket and SSE, on Trio."""

__version__ = "0.1.0"
