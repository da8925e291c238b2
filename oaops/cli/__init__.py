"""The command line: thin; parse, call a service, render. No business rules here."""
