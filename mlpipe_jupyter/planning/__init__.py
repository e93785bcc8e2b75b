"""Pure planning: validation, snapshots, fingerprints, reuse keys and their reasons."""
