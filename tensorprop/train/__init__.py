"""Training: statistics, losses, optimiser state and step, checkpoints, the fit loop, evaluation."""
