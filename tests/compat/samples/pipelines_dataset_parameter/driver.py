# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/machine-learning-pipelines/intro-to-pipelines/aml-pipelines-showcasing-dataset-and-pipelineparameter.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - %%writefile cells become the files they write, shipped beside this driver: train_with_dataset.py
#  - the Titanic.csv URL datasets read the shipped Titanic.csv (10 rows) uploaded to the default datastore (three lines added, the two URLs replaced by (datastore, 'demo/Titanic.csv'))
#  - the iris.csv GitHub URL datasets read the shipped iris.csv (sklearn's bundled iris data, same columns) uploaded to the default datastore
# The sample publishes (or drafts) a pipeline with `pipeline.publish(...)`: how far it runs today is in tests/compat/README.md.

# In[4]:
import azureml.core
from azureml.core import Workspace, Experiment, Dataset, RunConfiguration
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.environment import CondaDependencies
from azureml.data.dataset_consumption_config import DatasetConsumptionConfig
from azureml.widgets import RunDetails

from azureml.pipeline.core import PipelineParameter
from azureml.pipeline.core import Pipeline, PipelineRun
from azureml.pipeline.steps import PythonScriptStep

# Check core SDK version number
print("SDK version:", azureml.core.VERSION)

# In[6]:
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep = '\n')

# In[8]:
# Choose a name for the run history container in the workspace.
experiment_name = 'showcasing-dataset'
source_directory  = '.'

experiment = Experiment(ws, experiment_name)
experiment

# In[10]:
# Choose a name for your cluster.
amlcompute_cluster_name = "cpu-cluster"

found = False
# Check if this compute target already exists in the workspace.
cts = ws.compute_targets
if amlcompute_cluster_name in cts and cts[amlcompute_cluster_name].type == 'AmlCompute':
    found = True
    print('Found existing compute target.')
    compute_target = cts[amlcompute_cluster_name]
    
if not found:
    print('Creating a new compute target...')
    provisioning_config = AmlCompute.provisioning_configuration(vm_size = "STANDARD_D2_V2", # for GPU, use "Standard_NC6s_v3"
                                                                #vm_priority = 'lowpriority', # optional
                                                                max_nodes = 4)

    # Create the cluster.
    compute_target = ComputeTarget.create(ws, amlcompute_cluster_name, provisioning_config)
    
    # Can poll for a minimum number of nodes and for a specific timeout.
    # If no min_node_count is provided, it will use the scale settings for the cluster.
    compute_target.wait_for_completion(show_output = True, timeout_in_minutes = 10)
    
     # For a more detailed view of current AmlCompute status, use get_status().

# In[12]:
# changed: the shipped Titanic.csv, uploaded to the default datastore, instead of the public URL
def_blob_store = ws.get_default_datastore()
def_blob_store.upload_files(['Titanic.csv'], target_path='demo', overwrite=True)
file_dataset = Dataset.File.from_files((def_blob_store, 'demo/Titanic.csv'))
file_pipeline_param = PipelineParameter(name="file_ds_param", default_value=file_dataset)
file_ds_consumption = DatasetConsumptionConfig("file_dataset", file_pipeline_param).as_mount()

tabular_dataset = Dataset.Tabular.from_delimited_files((def_blob_store, 'demo/Titanic.csv'))
tabular_pipeline_param = PipelineParameter(name="tabular_ds_param", default_value=tabular_dataset)
tabular_ds_consumption = DatasetConsumptionConfig("tabular_dataset", tabular_pipeline_param)

# In[14]: %%writefile train_with_dataset.py (shipped as the file train_with_dataset.py)

# In[17]:
conda_dep = CondaDependencies()
conda_dep.add_pip_package("pandas")

run_config = RunConfiguration(conda_dependencies=conda_dep)

# In[18]:
train_step = PythonScriptStep(
    name="train_step",
    script_name="train_with_dataset.py",
    arguments=["--param1", file_ds_consumption, "--param2", tabular_ds_consumption],
    inputs=[file_ds_consumption, tabular_ds_consumption],
    compute_target=compute_target,
    source_directory=source_directory,
    runconfig=run_config)

print("train_step created")

pipeline = Pipeline(workspace=ws, steps=[train_step])
print("pipeline with the train_step created")

# In[21]:
# Pipeline will run with default file_ds and tabular_ds
pipeline_run = experiment.submit(pipeline)
print("Pipeline is submitted for execution")

# In[22]:
RunDetails(pipeline_run).show()

# In[23]:
pipeline_run.wait_for_completion()

# In[26]:
# changed: the shipped iris.csv instead of the GitHub URL
def_blob_store.upload_files(['iris.csv'], target_path='demo', overwrite=True)
iris_file_ds = Dataset.File.from_files((def_blob_store, 'demo/iris.csv'))

iris_tabular_ds = Dataset.Tabular.from_delimited_files((def_blob_store, 'demo/iris.csv'))

# In[27]:
pipeline_run_with_params = experiment.submit(pipeline, pipeline_parameters={'file_ds_param': iris_file_ds, 'tabular_ds_param': iris_tabular_ds}) 

# In[28]:
RunDetails(pipeline_run_with_params).show()

# In[29]:
pipeline_run_with_params.wait_for_completion()

# In[32]:
published_pipeline = pipeline.publish(name="Dataset_Pipeline", description="Pipeline to test Dataset PipelineParameter", continue_on_step_failure=True)
published_pipeline

# In[33]:
published_pipeline.submit(ws, experiment_name="publishedexperiment", pipeline_parameters={'file_ds_param': iris_file_ds, 'tabular_ds_param': iris_tabular_ds})

# In[34]:
from azureml.core.authentication import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

rest_endpoint = published_pipeline.endpoint

print("You can perform HTTP POST on URL {} to trigger this pipeline".format(rest_endpoint))

# In[35]:
# specify the param when running the pipeline
response = requests.post(rest_endpoint, 
                         headers=aad_token, 
                         json={"ExperimentName": "MyRestPipeline",
                               "RunSource": "SDK",
                               "DataSetDefinitionValueAssignments": {"file_ds_param": {"SavedDataSetReference": {"Id": iris_file_ds.id}},
                                                                     "tabular_ds_param": {"SavedDataSetReference": {"Id": iris_tabular_ds.id}}}
                              }
                        )

# In[36]:
try:
    response.raise_for_status()
except Exception:    
    raise Exception('Received bad response from the endpoint: {}\n'
                    'Response Code: {}\n'
                    'Headers: {}\n'
                    'Content: {}'.format(rest_endpoint, response.status_code, response.headers, response.content))

run_id = response.json().get('Id')
print('Submitted pipeline run: ', run_id)

# In[37]:
published_pipeline_run_via_rest = PipelineRun(ws.experiments["MyRestPipeline"], run_id)
RunDetails(published_pipeline_run_via_rest).show()

# In[38]:
published_pipeline_run_via_rest.wait_for_completion()
