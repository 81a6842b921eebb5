"""Analysis tools run on data or predictions (bounds, oracles), not used by training."""
