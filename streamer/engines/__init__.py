"""Engines of the stream log beyond one process (``docs/engines.md``): ``memory`` is the pure
``MemoryStreamLog`` alone; ``redis`` replicates it through Redis Streams (``redis_log``). The
I/O lives here, never in ``streamer.log``."""
