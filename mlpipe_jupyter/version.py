"""The package's version, on its own so the command line can say it without loading anything else."""
__version__ = "0.1.0"
