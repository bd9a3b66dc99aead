"""`glioseg train`: the training loop, losses, patch sampling, augmentation."""
