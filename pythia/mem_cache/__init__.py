"""KV memory: the paged KV pools the model reads and writes (page decisions live in the C++ core)."""
