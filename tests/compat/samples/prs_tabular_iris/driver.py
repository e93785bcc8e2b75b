# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/machine-learning-pipelines/parallel-run/tabular-dataset-inference-iris.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - one line added: the shipped iris/iris.csv (sklearn's bundled iris features, 150 rows) is uploaded to iris/ on the registered datastore, which in Azure is the public `pipelinedata/sampledata` container
#  - `model_datastore.download('iris_model.pkl')` (a pretrained model in a public container) is replaced by fitting a LogisticRegression on sklearn's iris data and pickling it to the same path, iris_model.pkl/iris_model.pkl; its numpy arrays are pickled as lists, since the step's environment (pinned to 2020 versions) has an older numpy and scikit-learn than the driver

# In[4]:
# Check core SDK version number
import azureml.core

print("SDK version:", azureml.core.VERSION)

# In[5]:
from azureml.core import Workspace

ws = Workspace.from_config()
print('Workspace name: ' + ws.name, 
      'Azure region: ' + ws.location, 
      'Subscription id: ' + ws.subscription_id, 
      'Resource group: ' + ws.resource_group, sep = '\n')

# In[7]:
import os
from azureml.core.compute import AmlCompute, ComputeTarget

# choose a name for your cluster
compute_name = os.environ.get("AML_COMPUTE_CLUSTER_NAME", "cpu-cluster")
compute_min_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MIN_NODES", 0)
compute_max_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MAX_NODES", 4)

# This example uses CPU VM. For using GPU VM, set SKU to Standard_NC6s_v3
vm_size = os.environ.get("AML_COMPUTE_CLUSTER_SKU", "STANDARD_D2_V2")


if compute_name in ws.compute_targets:
    compute_target = ws.compute_targets[compute_name]
    if compute_target and type(compute_target) is AmlCompute:
        print('found compute target. just use it. ' + compute_name)
else:
    print('creating a new compute target...')
    provisioning_config = AmlCompute.provisioning_configuration(vm_size = vm_size,
                                                                min_nodes = compute_min_nodes, 
                                                                max_nodes = compute_max_nodes)

    # create the cluster
    compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)
    
    # can poll for a minimum number of nodes and for a specific timeout.
    # if no min node count is provided it will use the scale settings for the cluster
    compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
    
     # For a more detailed view of current AmlCompute status, use get_status()
    print(compute_target.get_status().serialize())

# In[9]:
from azureml.core.datastore import Datastore

account_name = "pipelinedata"
datastore_name="iris_datastore_data"
container_name="sampledata"

iris_data = Datastore.register_azure_blob_container(ws, 
                      datastore_name=datastore_name, 
                      container_name= container_name, 
                      account_name=account_name, 
                      overwrite=True)

# In[11]:
from azureml.core.dataset import Dataset

iris_ds_name = 'iris_data'

# added: the shipped iris/iris.csv (sklearn's bundled iris features) uploaded to the datastore
iris_data.upload('iris', 'iris', overwrite=True)
path_on_datastore = iris_data.path('iris/')
input_iris_ds = Dataset.Tabular.from_delimited_files(path=path_on_datastore, validate=False)
named_iris_ds = input_iris_ds.as_named_input(iris_ds_name)

# In[13]:
from azureml.pipeline.core import PipelineData

datastore = ws.get_default_datastore()
output_folder = PipelineData(name='inferences', datastore=datastore)

# In[15]:
model_container_name="iris-model"
model_datastore_name="iris_model_datastore"

model_datastore = Datastore.register_azure_blob_container(ws, 
                      datastore_name=model_datastore_name, 
                      container_name= model_container_name, 
                      account_name=account_name, 
                      overwrite=True)

# In[16]:
from azureml.core.model import Model

# changed: the pretrained model is fitted here (sklearn's iris data) instead of downloaded; numpy arrays
# are pickled as lists, so that the environment's older numpy and scikit-learn can load it
import copyreg, pickle
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
_iris = load_iris(as_frame=True)
_X = _iris.data.set_axis(['sepal.length', 'sepal.width', 'petal.length', 'petal.width'], axis=1)
os.makedirs('iris_model.pkl', exist_ok=True)
with open('iris_model.pkl/iris_model.pkl', 'wb') as _f:
    _pickler = pickle.Pickler(_f, protocol=2)
    _pickler.dispatch_table = {**copyreg.dispatch_table,
                               np.ndarray: lambda a: (np.array, (a.tolist(), a.dtype.str))}
    _pickler.dump(LogisticRegression(max_iter=1000).fit(_X, _iris.target_names[_iris.target]))

# register downloaded model
model = Model.register(model_path = "iris_model.pkl/iris_model.pkl",
                       model_name = "iris-prs", # this is the name the model is registered as
                       tags = {'pretrained': "iris"},
                       workspace = ws)

# In[18]:
scripts_folder = "Code"
script_file = "iris_score.py"

# peek at contents
with open(os.path.join(scripts_folder, script_file)) as inference_file:
    print(inference_file.read())

# In[21]:
from azureml.core import Environment
from azureml.core.runconfig import CondaDependencies

predict_conda_deps = CondaDependencies.create(python_version="3.8", 
                                              conda_packages=['pip==20.2.4'],
                                              pin_sdk_version=False,
                                              pip_packages=["numpy==1.19.5", "pandas==1.4.4", "scikit-learn==0.22.2",
                                                            "azureml-core==1.54.0", "azureml-dataset-runtime[fuse]==1.54.0"])

predict_env = Environment(name="predict_environment")
predict_env.python.conda_dependencies = predict_conda_deps
predict_env.spark.precache_packages = False

# In[23]:
from azureml.pipeline.steps import ParallelRunStep, ParallelRunConfig

# In a real-world scenario, you'll want to shape your process per node and nodes to fit your problem domain.
parallel_run_config = ParallelRunConfig(
    source_directory=scripts_folder,
    entry_script=script_file,  # the user script to run against each input
    mini_batch_size='1KB',
    error_threshold=5,
    output_action='append_row',
    append_row_file_name="iris_outputs.txt",
    environment=predict_env,
    compute_target=compute_target, 
    node_count=2,
    run_invocation_timeout=600
)

# In[25]:
distributed_csv_iris_step = ParallelRunStep(
    name='example-iris',
    inputs=[named_iris_ds],
    output=output_folder,
    parallel_run_config=parallel_run_config,
    arguments=['--model_name', 'iris-prs'],
    allow_reuse=False
)

# In[27]:
from azureml.core import Experiment
from azureml.pipeline.core import Pipeline

pipeline = Pipeline(workspace=ws, steps=[distributed_csv_iris_step])

pipeline_run = Experiment(ws, 'iris-prs').submit(pipeline)

# In[29]:
# This will output information of the pipeline run, including the link to the details page of portal.
pipeline_run

# In[31]:
## Wait the run for completion and show output log to console
pipeline_run.wait_for_completion(show_output=True)

# In[33]:
import pandas as pd
import tempfile

prediction_run = pipeline_run.find_step_run(distributed_csv_iris_step.name)[0]
prediction_output = prediction_run.get_output_data(output_folder.name)

target_dir = tempfile.mkdtemp()
prediction_output.download(local_path=target_dir)
result_file = os.path.join(target_dir, prediction_output.path_on_datastore, parallel_run_config.append_row_file_name)

# cleanup output format
df = pd.read_csv(result_file, delimiter=" ", header=None)
df.columns = ["sepal.length", "sepal.width", "petal.length", "petal.width", "variety"]
print("Prediction has ", df.shape[0], " rows")

random_subset = df.sample(n=20)
random_subset.head(20)

# In[35]:
# uncomment below and run if compute resources are no longer needed 
# compute_target.delete()
