"""What a run's metrics mean at the end: threshold verdicts, the summary and its outputs."""
