"""Reports for management (R6): rendering only; the figures come from oaops.services.report."""
