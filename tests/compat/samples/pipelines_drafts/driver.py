# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/machine-learning-pipelines/intro-to-pipelines/aml-pipelines-how-to-use-pipeline-drafts.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - none besides the conversion itself (code cells in order, as one script)
# The sample publishes (or drafts) a pipeline with `PipelineDraft.create(...)`: how far it runs today is in tests/compat/README.md.

# In[4]:
import azureml.core
from azureml.core import Workspace
from azureml.widgets import RunDetails

# Check core SDK version number
print("SDK version:", azureml.core.VERSION)

ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep = '\n')

# In[6]:
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException
aml_compute_target = "cpu-cluster"
try:
    aml_compute = AmlCompute(ws, aml_compute_target)
    print("Found existing compute target: {}".format(aml_compute_target))
except ComputeTargetException:
    print("Creating new compute target: {}".format(aml_compute_target))
    
    provisioning_config = AmlCompute.provisioning_configuration(vm_size = "STANDARD_D2_V2",
                                                                min_nodes = 1, 
                                                                max_nodes = 4)    
    aml_compute = ComputeTarget.create(ws, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

# In[8]:
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

source_directory = "publish_run_train"

train_step = PythonScriptStep(
    name="Training_Step",
    script_name="train.py", 
    compute_target=aml_compute_target, 
    source_directory=source_directory)
print("train step created")

pipeline = Pipeline(workspace=ws, steps=[train_step])
print ("Pipeline is built")

# In[10]:
from azureml.pipeline.core import PipelineDraft

pipeline_draft = PipelineDraft.create(ws, name="TestPipelineDraft",
                                      description="draft description",
                                      experiment_name="pipeline_draft_sample",
                                      pipeline=pipeline,
                                      continue_on_step_failure=True,
                                      tags={'dev': 'true'},
                                      properties={'train': 'value'})

created_pipeline_draft_id = pipeline_draft.id

# In[12]:
pipeline_drafts = PipelineDraft.list(ws, tags={'dev': 'true'})

for pipeline_draft in pipeline_drafts:
    print(pipeline_draft)

# In[14]:
pipeline_draft = PipelineDraft.get(ws, id=created_pipeline_draft_id)

# In[16]:
new_train_step = PythonScriptStep(
    name="New_Training_Step",
    script_name="train.py", 
    compute_target=aml_compute_target, 
    source_directory=source_directory)

new_pipeline = Pipeline(workspace=ws, steps=[new_train_step])

pipeline_draft.update(name="UpdatedPipelineDraft", description="has updated train step", pipeline=new_pipeline)

# In[18]:
pipeline_run = pipeline_draft.submit_run()
pipeline_run

# In[20]:
published_pipeline = pipeline_draft.publish()
published_pipeline
