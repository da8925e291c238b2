"""One module per job kind: rules + store + runs. All permission checks happen here."""
