"""Notebook integration: the %%step and %pipeline magics, the run monitor and the designer.

Its modules import IPython and ipywidgets; the command line imports only notebook_meta (to run a
notebook's recorded pipeline), so this package file imports nothing."""
