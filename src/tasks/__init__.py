"""LightningModules: one per task, each taking the network as `net`."""
