# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/track-and-monitor-experiments/logging-api/logging-api.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - IPython magics and shell lines removed: `%matplotlib inline`

# In[5]:
from azureml.core import Experiment, Workspace, Run
import azureml.core
import numpy as np
from tqdm import tqdm

# Check core SDK version number

print("This notebook was created using SDK version 1.59.0, you are currently running version", azureml.core.VERSION)

# In[7]:
ws = Workspace.from_config()
print('Workspace name: ' + ws.name, 
      'Azure region: ' + ws.location, 
      'Subscription id: ' + ws.subscription_id, 
      'Resource group: ' + ws.resource_group, sep='\n')

# In[9]:
experiment = Experiment(workspace=ws, name='logging-api-test')

# In[11]:
# start logging for the run
run = experiment.start_logging()

# access the run id for use later
run_id = run.id

# change the scale factor on different runs to see how you can compare multiple runs
scale_factor = 2

# change the category on different runs to see how to organize data in reports
category = 'Red'

# In[13]:
run

# In[15]:
experiment

# In[17]:
# log a string metric
run.log(name='Category', value=category)

# In[19]:
# log numerical values
run.log(name="scale factor", value = scale_factor)
run.log(name='Magic Number', value=42 * scale_factor)

# In[21]:
fibonacci_values = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
scaled_values = (i * scale_factor for i in fibonacci_values)

# Log a list of values. Note this will generate a single-variable line chart.
run.log_list(name='Fibonacci', value=scaled_values)

for i in tqdm(range(-10, 10)):
    # log a metric value repeatedly, this will generate a single-variable line chart.
    run.log(name='Sigmoid', value=1 / (1 + np.exp(-i)))
    

# In[23]:
# create a dictionary to hold a table of values
sines = {}
sines['angle'] = []
sines['sine'] = []

for i in tqdm(range(-10, 10)):
    angle = i / 2.0 * scale_factor
    
    # log a 2 (or more) values as a metric repeatedly. This will generate a 2-variable line chart if you have 2 numerical columns.
    run.log_row(name='Cosine Wave', angle=angle, cos=np.cos(angle))
        
    sines['angle'].append(angle)
    sines['sine'].append(np.sin(angle))

# log a dictionary as a table, this will generate a 2-variable chart if you have 2 numerical columns
run.log_table(name='Sine Wave', value=sines)

# In[25]:

# Create a plot
import matplotlib.pyplot as plt
angle = np.linspace(-3, 3, 50) * scale_factor
plt.plot(angle,np.tanh(angle), label='tanh')
plt.legend(fontsize=12)
plt.title('Hyperbolic Tangent', fontsize=16)
plt.grid(True)

# Log the plot to the run.  To log an arbitrary image, use the form run.log_image(name, path='./image_path.png')
run.log_image(name='Hyperbolic Tangent', plot=plt)

# In[27]:
import random
metricNames = [ "Accuracy", "Precision", "Recall" ]
columnNames = [ "expected", "actual", "calculated", "inferred", "determined", "predicted", "forecast", "speculated", "assumed", "required", "intended", "deduced", "theorized", "hoped", "hypothesized" ]

for step in range(1000):
    for metricName in metricNames:

        metricKeyValueDictionary={}
        for column in columnNames:
            metricKeyValueDictionary[column] = random.randrange(0, step + 1)

        run.log_row(
            metricName,
            "Example row for metric " + metricName,
            **metricKeyValueDictionary)

# In[29]:
import os
directory = 'logging-api'

if not os.path.exists(directory):
    os.mkdir(directory)

file_name = os.path.join(directory, "myfile.txt")

with open(file_name, "w") as f:
    f.write('This is an output file that will be uploaded.\n')

# Upload the file explicitly into artifacts 
run.upload_file(name = file_name, path_or_stream = file_name)

# In[31]:
run.complete()

# In[34]:
fetched_run = Run(experiment, run_id)
fetched_run

# In[36]:
fetched_run.get_metrics()

# In[38]:
fetched_run.get_metrics(name = "scale factor")

# In[40]:
fetched_run.get_file_names()

# In[42]:
os.makedirs('files', exist_ok=True)

for f in run.get_file_names():
    dest = os.path.join('files', f.split('/')[-1])
    print('Downloading file {} to {}...'.format(f, dest))
    fetched_run.download_file(f, dest)   

# In[44]:
fetched_run.tag("My Favorite Run")
fetched_run.tag("Competition Rank", 1)

fetched_run.get_tags()
