"""Records: SQLAlchemy 2 models, one repository per record kind, the journal, migrations."""
