from oaops.cli.main import entry

entry()
