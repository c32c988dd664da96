"""The one training loop, its optimiser and schedule, and atomic checkpoints."""
