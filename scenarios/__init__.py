"""User-facing scenario files: the ticket-purchase test, its helpers and its thresholds config."""
