"""The runner, its events and the compute protocol."""
