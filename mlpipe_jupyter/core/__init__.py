"""The model: workspace, datastores, data, steps, pipelines, parameters, environments. Runs nothing."""
