"""``Datastore`` as Azure ML SDK v1 has it: the data layer's datastore, with the methods that hand back
data references (``upload``, ``upload_files``, ``path``, ``as_mount``, ``as_download``)."""
from __future__ import annotations

from mlpipe_jupyter.data import datastore as _data
from mlpipe_jupyter.sdk.data import DataReference


class Datastore(_data.Datastore):
    """A registered datastore of a workspace (``Datastore(ws, name)`` looks one up)."""

    def upload_files(self, files, relative_root=None, target_path=None, overwrite=False, show_progress=True):
        self.put_files(files, relative_root, target_path, overwrite, show_progress)
        return DataReference(self, path_on_datastore=target_path)

    def upload(self, src_dir, target_path=None, overwrite=False, show_progress=True):
        self.put_folder(src_dir, target_path, overwrite, show_progress)
        return DataReference(self, path_on_datastore=target_path)

    def path(self, path=None, data_reference_name=None):
        return DataReference(self, data_reference_name=data_reference_name, path_on_datastore=path)

    def as_mount(self):
        return self.path().as_mount()

    def as_download(self, path_on_compute=None):
        return self.path().as_download(path_on_compute)
