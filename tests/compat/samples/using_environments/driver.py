# Azure ML SDK v1 sample, converted to a script: how-to-use-azureml/training/using-environments/using-environments.ipynb
# from github.com/Azure/MachineLearningNotebooks at commit f1aff553c475be391acb2e5d4e4094867b5963c0.
# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).
# The code cells in order ("# In[n]" is the cell's index in the notebook); the step scripts beside
# this file are copied unchanged from the same commit. Changes from the sample:
#  - none besides the conversion itself (code cells in order, as one script)

# In[3]:
import azureml.core
print(azureml.core.VERSION)

# In[4]:
from azureml.core.workspace import Workspace
ws = Workspace.from_config()
ws.get_details()

# In[6]:
from azureml.core import Environment

curated_env = Environment.get(workspace=ws, name="AzureML-Minimal")

# In[8]:
envs = Environment.list(workspace=ws)

for env in envs:
    if env.startswith("AzureML"):
        print("Name",env)
        if envs[env].python.conda_dependencies is not None:
            print("packages", envs[env].python.conda_dependencies.serialize_to_string())

# In[10]:
from azureml.core.environment import CondaDependencies

myenv = Environment(name="myenv")
conda_dep = CondaDependencies()
conda_dep.add_conda_package("scikit-learn==0.22.1")

# In[12]:
conda_dep.add_pip_package("pillow==6.2.1")
myenv.python.conda_dependencies=conda_dep

# In[14]:
from azureml.core import ScriptRunConfig, Experiment

myexp = Experiment(workspace=ws, name = "environment-example")

# In[16]:
src = ScriptRunConfig(source_directory=".",
                      script="example.py",
                      compute_target="local",
                      environment=myenv)

run = myexp.submit(config=src)

run.wait_for_completion(show_output=True)

# In[18]:
run.get_environment()

# In[20]:
myenv.register(workspace=ws)

# In[22]:
for name,env in ws.environments.items():
    print("Name {} \t version {}".format(name,env.version))

restored_environment = Environment.get(workspace=ws,name="myenv",version="1")

print("Attributes of restored environment")
restored_environment

# In[26]:
myenv.docker.enabled = True

# In[28]:
myenv.docker.base_image
myenv.docker.base_image_registry

# In[30]:
myenv.docker.shared_volumes
myenv.docker.shm_size

# In[33]:

