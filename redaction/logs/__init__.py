"""What must never reach a log: scrubbing of logs and errors."""
