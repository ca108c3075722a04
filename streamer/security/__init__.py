"""The trust boundary (``docs/security.md``): who is calling (``identity``), from where a
browser may call (``origins``), and what each identity may spend (``policy``).

Everything here is sans-IO except the key and JWKS files the identity module reads; the web
layer (``streamer.web``) applies it to every request and WebSocket before a route runs.
"""
