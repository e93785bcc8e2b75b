# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/machine-learning-pipelines/nyc-taxi-data-regression-model-building/nyc-taxi-data-regression-model-building.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - the Azure Open Datasets download (import of azureml.opendatasets, and the two loops that append NycTlcGreen / NycTlcYellow samples) is removed: the pipeline runs on the 250 + 250 rows the notebook itself builds inline
#  - AutoML is cloud-only: the AutoMLConfig and AutoMLStep cells are removed, the pipeline is built from the train/test split step instead (`pipeline_steps = [testTrainSplitStep]`), and the last cells (AutoMLRun: the AutoML model's details) are removed

# In[4]:
import azureml.core
# Check core SDK version number
print("SDK version:", azureml.core.VERSION)

# In[5]:
import pandas as pd
from datetime import datetime
from dateutil.relativedelta import relativedelta

green_df_raw = pd.DataFrame([
    [2,"2016-01-03 21:02:35","2016-01-03 21:05:52",1,0.83,"","",-73.98726654052734,40.6938362121582,-73.97611236572266,40.69454574584961,1,"N",1,4.5,0.5,0.5,0.3,0.0,0.0,"",5.8,1.0],
    [2,"2016-01-19 21:49:17","2016-01-19 21:54:37",2,1.27,"","",-73.94845581054688,40.80146789550781,-73.95975494384766,40.81214904785156,1,"N",1,6.0,0.5,0.5,0.3,1.0,0.0,"",8.3,1.0],
    [2,"2016-01-05 09:46:18","2016-01-05 09:57:28",1,1.8,"","",-73.9554443359375,40.6797981262207,-73.98030853271484,40.678741455078125,1,"N",1,9.5,0.0,0.5,0.3,2.06,0.0,"",12.36,1.0],
    [1,"2016-01-08 17:49:12","2016-01-08 17:52:20",1,0.5,"","",-73.92293548583984,40.76081848144531,-73.92549896240234,40.75471496582031,1,"N",1,4.0,1.0,0.5,0.3,1.15,0.0,"",6.95,1.0],
    [1,"2016-01-29 10:28:21","2016-01-29 10:34:59",1,0.9,"","",-73.92304229736328,40.664939880371094,-73.91104125976562,40.66966247558594,1,"N",2,6.0,0.0,0.5,0.3,0.0,0.0,"",6.8,1.0],
    ] * 50, columns=["vendorID","lpepPickupDatetime","lpepDropoffDatetime","passengerCount","tripDistance","puLocationId","doLocationId","pickupLongitude","pickupLatitude","dropoffLongitude","dropoffLatitude","rateCodeID","storeAndFwdFlag","paymentType","fareAmount","extra","mtaTax","improvementSurcharge","tipAmount","tollsAmount","ehailFee","totalAmount","tripType"])
start = datetime.strptime("1/1/2016","%m/%d/%Y")
end = datetime.strptime("1/31/2016","%m/%d/%Y")

number_of_months = 1
sample_size = 5000

# removed: the NycTlcGreen download loop

# In[6]:
yellow_df_raw = pd.DataFrame([
    [2,"2016-01-06 12:09:13","2016-01-06 12:22:14",1,2.09,"","",-73.98207092285156,40.74605941772461,-74.00462341308594,40.730628967285156,1,"N",1,10.5,0.0,0.5,0.3,2.26,0.0,13.56],
    [1,"2016-01-03 17:57:48","2016-01-03 18:08:18",3,1.5,"","",-73.96627044677734,40.764835357666016,-73.98455047607422,40.75786209106445,1,"N",2,8.5,1.0,0.5,0.3,0.0,0.0,10.3],
    [1,"2016-01-18 07:37:51","2016-01-18 07:47:01",1,1.8,"","",0.0,0.0,0.0,0.0,1,"N",1,8.5,0.0,0.5,0.3,1.85,0.0,11.15],
    [2,"2016-01-26 00:31:36","2016-01-26 00:38:47",1,1.96,"","",-73.9906234741211,40.7553596496582,-73.97895812988281,40.78070831298828,1,"N",1,8.0,0.5,0.5,0.3,1.0,0.0,10.3],
    [2,"2016-01-20 23:37:22","2016-01-20 23:51:09",1,3.6,"","",-73.98528289794922,40.76026153564453,-74.01127624511719,40.7148323059082,1,"N",1,13.5,0.5,0.5,0.3,2.5,0.0,17.3]
    ] * 50, columns=["vendorID","tpepPickupDateTime","tpepDropoffDateTime","passengerCount","tripDistance","puLocationId","doLocationId","startLon","startLat","endLon","endLat","rateCodeID","storeAndFwdFlag","paymentType","fareAmount","extra","mtaTax","improvementSurcharge","tipAmount","tollsAmount","totalAmount"])
start = datetime.strptime("1/1/2016","%m/%d/%Y")
end = datetime.strptime("1/31/2016","%m/%d/%Y")

sample_size = 500

# removed: the NycTlcYellow download loop

# In[8]:
from IPython.display import display

display(green_df_raw.head(5))
display(yellow_df_raw.head(5))

# In[10]:
import os
dataDir = "data"

if not os.path.exists(dataDir):
    os.mkdir(dataDir)

greenDir = dataDir + "/green"
yelloDir = dataDir + "/yellow"

if not os.path.exists(greenDir):
    os.mkdir(greenDir)
    
if not os.path.exists(yelloDir):
    os.mkdir(yelloDir)
    
greenTaxiData = greenDir + "/unprepared.parquet"
yellowTaxiData = yelloDir + "/unprepared.parquet"

green_df_raw.to_csv(greenTaxiData, index=False)
yellow_df_raw.to_csv(yellowTaxiData, index=False)

print("Data written to local folder.")

# In[11]:
from azureml.core import Workspace

ws = Workspace.from_config()
print("Workspace: " + ws.name, "Region: " + ws.location, sep = '\n')

# Default datastore
default_store = ws.get_default_datastore() 

default_store.upload_files([greenTaxiData], 
                           target_path = 'green', 
                           overwrite = True, 
                           show_progress = True)

default_store.upload_files([yellowTaxiData], 
                           target_path = 'yellow', 
                           overwrite = True, 
                           show_progress = True)

print("Upload calls completed.")

# In[13]:
from azureml.core import Dataset
green_taxi_data = Dataset.Tabular.from_delimited_files(default_store.path('green/unprepared.parquet'))
yellow_taxi_data = Dataset.Tabular.from_delimited_files(default_store.path('yellow/unprepared.parquet'))

# In[15]:
green_taxi_data = green_taxi_data.register(ws, 'green_taxi_data')
yellow_taxi_data = yellow_taxi_data.register(ws, 'yellow_taxi_data')

# In[17]:
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException

# Choose a name for your CPU cluster
amlcompute_cluster_name = "cpu-cluster"

# Verify that cluster does not exist already
try:
    aml_compute = ComputeTarget(workspace=ws, name=amlcompute_cluster_name)
    print('Found existing cluster, use it.')
except ComputeTargetException:
    compute_config = AmlCompute.provisioning_configuration(vm_size='STANDARD_DS12_V2',
                                                           max_nodes=4)
    aml_compute = ComputeTarget.create(ws, amlcompute_cluster_name, compute_config)

aml_compute.wait_for_completion(show_output=True)

# In[19]:
from azureml.core.runconfig import RunConfiguration
from azureml.core.conda_dependencies import CondaDependencies

# Create a new runconfig object
aml_run_config = RunConfiguration()

# Use the aml_compute you created above. 
aml_run_config.target = aml_compute

# Enable Docker
aml_run_config.environment.docker.enabled = True

# Use conda_dependencies.yml to create a conda environment in the Docker image for execution
aml_run_config.environment.python.user_managed_dependencies = False

# Specify CondaDependencies obj, add necessary packages
aml_run_config.environment.python.conda_dependencies = CondaDependencies.create(
    conda_packages=['pandas','scikit-learn'], 
    pip_packages=['azureml-sdk[automl]', 'pyarrow==14.0.2'])

print ("Run configuration created.")

# In[22]:
display(green_df_raw.columns)
display(yellow_df_raw.columns)

# useful columns needed for the Azure Machine Learning NYC Taxi tutorial
useful_columns = str(["cost", "distance", "dropoff_datetime", "dropoff_latitude", 
                      "dropoff_longitude", "passengers", "pickup_datetime", 
                      "pickup_latitude", "pickup_longitude", "store_forward", "vendor"]).replace(",", ";")

print("Useful columns defined.")

# In[24]:
from azureml.pipeline.core import PipelineData
from azureml.pipeline.steps import PythonScriptStep

# python scripts folder
prepare_data_folder = './scripts/prepdata'

# rename columns as per Azure Machine Learning NYC Taxi tutorial
green_columns = str({ 
    "vendorID": "vendor",
    "lpepPickupDatetime": "pickup_datetime",
    "lpepDropoffDatetime": "dropoff_datetime",
    "storeAndFwdFlag": "store_forward",
    "pickupLongitude": "pickup_longitude",
    "pickupLatitude": "pickup_latitude",
    "dropoffLongitude": "dropoff_longitude",
    "dropoffLatitude": "dropoff_latitude",
    "passengerCount": "passengers",
    "fareAmount": "cost",
    "tripDistance": "distance"
}).replace(",", ";")

# Define output after cleansing step
cleansed_green_data = PipelineData("cleansed_green_data", datastore=default_store, is_directory=True).as_dataset()

print('Cleanse script is in {}.'.format(os.path.realpath(prepare_data_folder)))

# cleansing step creation
# See the cleanse.py for details about input and output
cleansingStepGreen = PythonScriptStep(
    name="Cleanse Green Taxi Data",
    script_name="cleanse.py", 
    arguments=["--useful_columns", useful_columns,
               "--columns", green_columns,
               "--output_cleanse", cleansed_green_data],
    inputs=[green_taxi_data.as_named_input('raw_data')],
    outputs=[cleansed_green_data],
    compute_target=aml_compute,
    runconfig=aml_run_config,
    source_directory=prepare_data_folder,
    allow_reuse=True
)

print("cleansingStepGreen created.")

# In[26]:
yellow_columns = str({
    "vendorID": "vendor",
    "tpepPickupDateTime": "pickup_datetime",
    "tpepDropoffDateTime": "dropoff_datetime",
    "storeAndFwdFlag": "store_forward",
    "startLon": "pickup_longitude",
    "startLat": "pickup_latitude",
    "endLon": "dropoff_longitude",
    "endLat": "dropoff_latitude",
    "passengerCount": "passengers",
    "fareAmount": "cost",
    "tripDistance": "distance"
}).replace(",", ";")

# Define output after cleansing step
cleansed_yellow_data = PipelineData("cleansed_yellow_data", datastore=default_store, is_directory=True).as_dataset()

print('Cleanse script is in {}.'.format(os.path.realpath(prepare_data_folder)))

# cleansing step creation
# See the cleanse.py for details about input and output
cleansingStepYellow = PythonScriptStep(
    name="Cleanse Yellow Taxi Data",
    script_name="cleanse.py", 
    arguments=["--useful_columns", useful_columns,
               "--columns", yellow_columns,
               "--output_cleanse", cleansed_yellow_data],
    inputs=[yellow_taxi_data.as_named_input('raw_data')],
    outputs=[cleansed_yellow_data],
    compute_target=aml_compute,
    runconfig=aml_run_config,
    source_directory=prepare_data_folder,
    allow_reuse=True
)

print("cleansingStepYellow created.")

# In[28]:
# Define output after merging step
merged_data = PipelineData("merged_data", datastore=default_store, is_directory=True).as_dataset()

print('Merge script is in {}.'.format(os.path.realpath(prepare_data_folder)))

# merging step creation
# See the merge.py for details about input and output
mergingStep = PythonScriptStep(
    name="Merge Taxi Data",
    script_name="merge.py", 
    arguments=["--output_merge", merged_data],
    inputs=[cleansed_green_data.parse_parquet_files(),
            cleansed_yellow_data.parse_parquet_files()],
    outputs=[merged_data],
    compute_target=aml_compute,
    runconfig=aml_run_config,
    source_directory=prepare_data_folder,
    allow_reuse=True
)

print("mergingStep created.")

# In[30]:
# Define output after merging step
filtered_data = PipelineData("filtered_data", datastore=default_store, is_directory=True).as_dataset()

print('Filter script is in {}.'.format(os.path.realpath(prepare_data_folder)))

# filter step creation
# See the filter.py for details about input and output
filterStep = PythonScriptStep(
    name="Filter Taxi Data",
    script_name="filter.py", 
    arguments=["--output_filter", filtered_data],
    inputs=[merged_data.parse_parquet_files()],
    outputs=[filtered_data],
    compute_target=aml_compute,
    runconfig = aml_run_config,
    source_directory=prepare_data_folder,
    allow_reuse=True
)

print("FilterStep created.")

# In[32]:
# Define output after normalize step
normalized_data = PipelineData("normalized_data", datastore=default_store, is_directory=True).as_dataset()

print('Normalize script is in {}.'.format(os.path.realpath(prepare_data_folder)))

# normalize step creation
# See the normalize.py for details about input and output
normalizeStep = PythonScriptStep(
    name="Normalize Taxi Data",
    script_name="normalize.py", 
    arguments=["--output_normalize", normalized_data],
    inputs=[filtered_data.parse_parquet_files()],
    outputs=[normalized_data],
    compute_target=aml_compute,
    runconfig = aml_run_config,
    source_directory=prepare_data_folder,
    allow_reuse=True
)

print("normalizeStep created.")

# In[34]:
# Define output after transform step
transformed_data = PipelineData("transformed_data", datastore=default_store, is_directory=True).as_dataset()

print('Transform script is in {}.'.format(os.path.realpath(prepare_data_folder)))

# transform step creation
# See the transform.py for details about input and output
transformStep = PythonScriptStep(
    name="Transform Taxi Data",
    script_name="transform.py", 
    arguments=["--output_transform", transformed_data],
    inputs=[normalized_data.parse_parquet_files()],
    outputs=[transformed_data],
    compute_target=aml_compute,
    runconfig = aml_run_config,
    source_directory=prepare_data_folder,
    allow_reuse=True
)

print("transformStep created.")

# In[36]:
train_model_folder = './scripts/trainmodel'

# train and test splits output
output_split_train = PipelineData("output_split_train", datastore=default_store, is_directory=True).as_dataset()
output_split_test = PipelineData("output_split_test", datastore=default_store, is_directory=True).as_dataset()

print('Data spilt script is in {}.'.format(os.path.realpath(train_model_folder)))

# test train split step creation
# See the train_test_split.py for details about input and output
testTrainSplitStep = PythonScriptStep(
    name="Train Test Data Split",
    script_name="train_test_split.py", 
    arguments=["--output_split_train", output_split_train,
               "--output_split_test", output_split_test],
    inputs=[transformed_data.parse_parquet_files()],
    outputs=[output_split_train, output_split_test],
    compute_target=aml_compute,
    runconfig = aml_run_config,
    source_directory=train_model_folder,
    allow_reuse=True
)

print("testTrainSplitStep created.")

# In[40]:
from azureml.core import Experiment

experiment = Experiment(ws, 'NYCTaxi_Tutorial_Pipelines')

print("Experiment created")

# In[42]:
# removed: the AutoMLConfig / AutoMLStep cells (AutoML has no local meaning)

# In[46]:
from azureml.pipeline.core import Pipeline
from azureml.widgets import RunDetails

pipeline_steps = [testTrainSplitStep]  # changed: AutoML step removed

pipeline = Pipeline(workspace = ws, steps=pipeline_steps)
print("Pipeline is built.")

pipeline_run = experiment.submit(pipeline, regenerate_outputs=False)

print("Pipeline submitted for execution.")

# In[47]:
RunDetails(pipeline_run).show()

# In[49]:
# Before we proceed we need to wait for the run to complete.
pipeline_run.wait_for_completion(show_output=False)

# functions to download output to local and fetch as dataframe
def get_download_path(download_path, output_name):
    output_folder = os.listdir(download_path + '/azureml')[0]
    path =  download_path + '/azureml/' + output_folder + '/' + output_name
    return path

def fetch_df(current_step, output_name):
    output_data = current_step.get_output_data(output_name)    
    download_path = './outputs/' + output_name
    output_data.download(download_path, overwrite=True)
    df_path = get_download_path(download_path, output_name) + '/processed.parquet'
    return pd.read_parquet(df_path)

# In[51]:
green_cleanse_step = pipeline_run.find_step_run(cleansingStepGreen.name)[0]
yellow_cleanse_step = pipeline_run.find_step_run(cleansingStepYellow.name)[0]

cleansed_green_df = fetch_df(green_cleanse_step, cleansed_green_data.name)
cleansed_yellow_df = fetch_df(yellow_cleanse_step, cleansed_yellow_data.name)

display(cleansed_green_df.head(5))
display(cleansed_yellow_df.head(5))

# In[53]:
merge_step = pipeline_run.find_step_run(mergingStep.name)[0]
combined_df = fetch_df(merge_step, merged_data.name)

display(combined_df.describe())

# In[55]:
filter_step = pipeline_run.find_step_run(filterStep.name)[0]
filtered_df = fetch_df(filter_step, filtered_data.name)

display(filtered_df.describe())

# In[57]:
normalize_step = pipeline_run.find_step_run(normalizeStep.name)[0]
normalized_df = fetch_df(normalize_step, normalized_data.name)

display(normalized_df.head(5))

# In[59]:
transform_step = pipeline_run.find_step_run(transformStep.name)[0]
transformed_df = fetch_df(transform_step, transformed_data.name)

display(transformed_df.describe())
display(transformed_df.head(5))

# In[61]:
split_step = pipeline_run.find_step_run(testTrainSplitStep.name)[0]
train_split = fetch_df(split_step, output_split_train.name)

display(train_split.describe())
display(train_split.head(5))

# In[63]:
# removed: the AutoMLRun cells
