"""What both sides of surge share: options and the schedule model, metrics and sketches,
the wire protocol and the error types. Nothing here imports the rest of surge."""
