"""The two sides of a server: the front (tokenize, route, stream) and the engine loop (model process)."""
