"""Run history: the store, runs as seen from outside, and the run context a script sees."""
