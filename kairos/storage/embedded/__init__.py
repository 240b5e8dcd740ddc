"""The embedded engine: compressed blocks, chunk codec, series index (see store.py)."""
