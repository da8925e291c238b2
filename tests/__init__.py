"""oaops test suite."""
