"""Training: target assignment, losses, the loop, checkpoints, logging."""
