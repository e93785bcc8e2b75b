# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/track-and-monitor-experiments/manage-runs/manage-runs.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - IPython magics and shell lines removed: `!more hello.py`, `!more hello_with_children.py`, `!more hello_with_delay.py`
#  - %%writefile cells become the files they write, shipped beside this driver: .amlignore

# In[5]:
import azureml.core
from azureml.core import Workspace, Experiment, Run
from azureml.core import ScriptRunConfig

print(azureml.core.VERSION)

# In[6]:
ws = Workspace.from_config()

# In[7]:
exp = Experiment(workspace=ws, name="explore-runs")

# In[9]:
notebook_run = exp.start_logging()

notebook_run.log(name="message", value="Hello from run!")

print(notebook_run.get_status())

# In[11]:
print(notebook_run.get_status())

# In[13]:
notebook_run

# In[15]:
notebook_run.get_details()

# In[17]:
notebook_run.complete()
print(notebook_run.get_status())

# In[19]:
with exp.start_logging() as notebook_run:
    notebook_run.log(name="message", value="Hello from run!")
    print("Is it still running?",notebook_run.get_status())
    
print("Has it completed?",notebook_run.get_status())

# In[21]:


# In[23]: %%writefile .amlignore (shipped as the file .amlignore)

# In[25]:
run_config = ScriptRunConfig(source_directory='.', script='hello.py')

local_script_run = exp.submit(run_config)

# In[27]:
print(local_script_run.get_status())
local_script_run

# In[29]:
local_script_run.get_details_with_logs()

# In[31]:
local_script_run.wait_for_completion(show_output=True)
print(local_script_run.get_status())

# In[33]:
local_script_run.add_properties({"author":"azureml-user"})
print(local_script_run.get_properties())

# In[35]:
try:
    local_script_run.add_properties({"author":"different-user"})
except Exception as e:
    print(e)

# In[37]:
local_script_run.tag("quality", "great run")
print(local_script_run.get_tags())

# In[38]:
local_script_run.tag("quality", "fantastic run")
print(local_script_run.get_tags())

# In[40]:
local_script_run.tag("worth another look")
print(local_script_run.get_tags())

# In[42]:
list(exp.get_runs(properties={"author":"azureml-user"},tags={"quality":"fantastic run"}))

# In[43]:
list(exp.get_runs(properties={"author":"azureml-user"},tags="worth another look"))

# In[46]:


# In[47]:
run_config = ScriptRunConfig(source_directory='.', script='hello_with_children.py')

local_script_run = exp.submit(run_config)
local_script_run.wait_for_completion(show_output=True)
print(local_script_run.get_status())

# In[49]:
with exp.start_logging() as parent_run:
    for c,count in enumerate(range(5)):
        with parent_run.child_run() as child:
            child.log(name="Hello from child run", value=c)

# In[51]:
list(parent_run.get_children())

# In[53]:


# In[55]:
run_config = ScriptRunConfig(source_directory='.', script='hello_with_delay.py')

local_script_run = exp.submit(run_config)
print("Did the run start?",local_script_run.get_status())
local_script_run.cancel()
print("Did the run cancel?",local_script_run.get_status())

# In[57]:
local_script_run = exp.submit(run_config)
local_script_run.fail()
print(local_script_run.get_status())

# In[59]:
local_script_run.restore_snapshot(path="snapshots")

# In[62]:

