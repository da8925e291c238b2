"""Demo records and demo services: a generated year of records (`oaops demo year`, oaops.demo.year,
one module per record kind), the OA-like data set to back up (oaops.demo.data), a stand-in OA
login page (oaops.demo.site) and a local SMTP sink (oaops.demo.mail).

Kept free of imports: `python -m oaops.demo_site` should not pay for SQLAlchemy."""
