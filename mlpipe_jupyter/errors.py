"""Errors users see. Each carries one short paragraph that names the culprit."""


class MlpipeError(Exception):
    """Base of every error this package raises on purpose."""


class UserError(MlpipeError):
    """Bad input from the user: shown as one paragraph, never as a traceback."""


class PipelineValidationError(UserError):
    """A pipeline that cannot run; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"The pipeline is not valid ({n} problem{'s' if n != 1 else ''}); nothing was run:\n{lines}")


class DatastorePathError(UserError):
    """A path that would leave its datastore."""


class WorkspaceNotFoundError(UserError):
    """No workspace folder where one was expected."""


class ComputeTargetError(UserError):
    """A compute target that does not exist or cannot be used (Azure ML's ComputeTargetException)."""


class NotAvailableLocallyError(UserError):
    """An Azure ML feature that has no meaning on this machine (AutoML, Databricks, ...)."""


class RunNotFoundError(UserError):
    """A run id that the store does not know."""


class NotFoundError(UserError):
    """A published pipeline, endpoint or draft id the workspace does not know (HTTP 404)."""


class ConflictError(UserError):
    """A published pipeline or endpoint that is disabled (HTTP 409)."""


class RequestError(UserError):
    """A malformed request to run a published pipeline: its body, a parameter name or value (HTTP 400)."""


class ActivityFailedError(MlpipeError):
    """Raised by wait_for_completion when the run failed (Azure ML's name for it)."""

    def __init__(self, run_id, status, error):
        self.run_id, self.status, self.error = run_id, status, error
        super().__init__(f"Run {run_id} ended {status}: {error}")
