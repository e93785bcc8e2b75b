# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/machine-learning-pipelines/intro-to-pipelines/aml-pipelines-setup-versioned-pipeline-endpoints.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - none besides the conversion itself (code cells in order, as one script)
# The sample publishes (or drafts) a pipeline with `pipeline.publish(...)`: how far it runs today is in tests/compat/README.md.

# In[4]:
from azureml.core import Workspace

ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep = '\n')

# In[8]:
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.pipeline.steps import PythonScriptStep
from azureml.pipeline.core import Pipeline

#Retrieve an already attached Azure Machine Learning Compute
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

# source_directory
source_directory = 'publish_run_train'
# define a single step pipeline for demonstration purpose.
trainStep = PythonScriptStep(
    name="Training_Step",
    script_name="train.py", 
    compute_target=aml_compute_target, 
    source_directory=source_directory
)
print("TrainStep created")
# build and validate Pipeline
pipeline = Pipeline(workspace=ws, steps=[trainStep])
print("Pipeline is built")

# In[10]:
from datetime import datetime

timenow = datetime.now().strftime('%m-%d-%Y-%H-%M')

pipeline_name = timenow + "-Pipeline"
print(pipeline_name)

published_pipeline = pipeline.publish(
    name=pipeline_name, 
    description=pipeline_name)
print("Newly published pipeline id: {}".format(published_pipeline.id))

# In[12]:
from azureml.pipeline.core import PipelineEndpoint

pipeline_endpoint = PipelineEndpoint.publish(workspace=ws, name="PipelineEndpointTest",
                                            pipeline=pipeline, description="Test description Notebook")
pipeline_endpoint

# In[15]:
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="PipelineEndpointTest")
pipeline_endpoint_by_name

# In[17]:
#get the PipelineEndpoint Id
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="PipelineEndpointTest")
endpoint_id = pipeline_endpoint_by_name.id

pipeline_endpoint_by_id = PipelineEndpoint.get(workspace=ws, id=endpoint_id)
pipeline_endpoint_by_id

# In[19]:
endpoint_list = PipelineEndpoint.list(workspace=ws, active_only=True)
endpoint_list

# In[22]:
default_version = pipeline_endpoint_by_name.get_default_version()
default_version

# In[24]:
pipeline_endpoint_by_name.set_default_version("0")

# In[26]:
pipeline = pipeline_endpoint_by_name.get_pipeline("0")
pipeline

# In[28]:
pipeline = pipeline_endpoint_by_name.get_pipeline()
pipeline

# In[30]:
pipeline_endpoint_by_name.add(published_pipeline)

# In[32]:
# Set Published Pipeline to PipelineEndpoint, if exists
pipeline_endpoint_by_name.set_default(published_pipeline)

# In[34]:
versions = pipeline_endpoint_by_name.list_versions()

for ve in versions:
    print(ve.version)
    print(ve.pipeline.id)

# In[36]:
pipelines = pipeline_endpoint_by_name.list_pipelines(active_only=True)
pipelines

# In[39]:
pipeline_endpoint_by_name.set_name(name="NewName")

# In[42]:
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="NewName")

# endpoint with id 
rest_endpoint_id =  pipeline_endpoint_by_name.endpoint

# for default version pipeline
rest_endpoint_id_without_version_with_id = rest_endpoint_id

# for specific version pipeline just append version info
version="0"
rest_endpoint_id_with_version = rest_endpoint_id_without_version_with_id+"/"+ version
print(rest_endpoint_id_with_version)
pipeline_endpoint_by_name

# In[43]:
# endpoint with name
rest_endpoint_name = rest_endpoint_id.split("Id", 1)[0] + "Name?name=" + pipeline_endpoint_by_name.name

# for default version pipeline
rest_endpoint_name_without_version = rest_endpoint_name

# for specific version pipeline just append version info
version="0"
rest_endpoint_name_with_version = rest_endpoint_name_without_version+"&pipelineVersion="+ version
print(rest_endpoint_name_with_version)

# In[45]:
from azureml.core.authentication import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

#endpoint = pipeline_endpoint_by_name.url

print("You can perform HTTP POST on URL {} to trigger this pipeline".format(rest_endpoint_name_with_version))

# specify the param when running the pipeline
response = requests.post(rest_endpoint_name_with_version, 
                         headers=aad_token, 
                         json={"ExperimentName": "default_pipeline",
                               "RunSource": "SDK",
                               "ParameterAssignments": {"1": "united", "2":"city"}})

# In[46]:
try:
    response.raise_for_status()
except Exception:    
    raise Exception('Received bad response from the endpoint: {}\n'
                    'Response Code: {}\n'
                    'Headers: {}\n'
                    'Content: {}'.format(rest_endpoint, response.status_code, response.headers, response.content))

run_id = response.json().get('Id')
print('Submitted pipeline run: ', run_id)

# In[48]:
# submit pipeline with specific version
run_id = pipeline_endpoint_by_name.submit("NewName", pipeline_version="0")
print(run_id)

# submit pipeline with default version
run_id = pipeline_endpoint_by_name.submit("NewName")
print(run_id)

# In[50]:
from azureml.core import Experiment
pipeline_run = Experiment(ws, name="submit_endpoint_sample").submit(pipeline_endpoint_by_name, tags={'endpoint_tag': "1"}, pipeline_version="0")
