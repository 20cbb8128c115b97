"""The coordinator: plans a run, hands it out, watches the workers, merges, judges."""
