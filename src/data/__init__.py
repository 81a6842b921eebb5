"""LightningDataModules and their helpers."""
