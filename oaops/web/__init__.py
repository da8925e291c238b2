"""The web console (`oaops web`): server-rendered pages over the same services as the CLI."""
