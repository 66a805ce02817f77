"""Variants logged as MLflow pyfunc models, so a registry alias is servable.

`mlflow.pyfunc.load_model("models:/<name>@champion-<target>")` gives a model
whose `predict(["prompt", ...])` returns generated text, for every variant kind:
plain and bitsandbytes checkpoints load through transformers, optimum-quanto
ones through quanto's own class (tasks.models.load_model knows which), which
`mlflow.transformers` could not do for all of them.

The variant directory travels inside the MLflow model as its one artifact;
the run's `model` artifact path holds the MLmodel file, so the registered
version's source `runs:/<run>/model` is the servable model.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow.pyfunc

from tasks.tracking.runs import client

ARTIFACT = "variant"
# What loading needs beyond greenlane itself; pinned to what this environment runs (no inference at save time,
# which would load the model in a subprocess).
_REQUIREMENTS = ("torch", "transformers", "safetensors", "accelerate", "bitsandbytes", "optimum-quanto", "mlflow")


class GreenlaneLM(mlflow.pyfunc.PythonModel):
    """Chat-formatted greedy generation from a greenlane variant directory."""

    def load_context(self, context) -> None:
        from tasks.models import load_model

        self.model, self.tokenizer = load_model(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[str]:
        import torch

        from tasks.measurement.latency import chat_inputs

        max_new_tokens = int((params or {}).get("max_new_tokens", 64))
        outputs = []
        for prompt in model_input:
            inputs = chat_inputs(self.tokenizer, str(prompt))
            with torch.inference_mode():
                ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
            outputs.append(self.tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
        return outputs


def log_servable(tracking_uri: str, run_id: str, variant_dir: Path, artifact_path: str = "model") -> None:
    """Save the variant as a pyfunc model locally, then log it under the run's `artifact_path`."""
    # MLflow warns on every save that a Python object is cloudpickled: known and intended here (the class is
    # importable from greenlane, so only a reference is pickled).
    quiet = logging.getLogger("mlflow.pyfunc")
    level = quiet.level
    with tempfile.TemporaryDirectory(prefix="greenlane-pyfunc-") as tmp:
        path = Path(tmp) / "model"
        quiet.setLevel(logging.ERROR)
        try:
            mlflow.pyfunc.save_model(
                path=str(path), python_model=GreenlaneLM(), artifacts={ARTIFACT: str(variant_dir)},
                pip_requirements=[f"{name}=={version(name)}" for name in _REQUIREMENTS],
            )
        finally:
            quiet.setLevel(level)
        client(tracking_uri).log_artifacts(run_id, str(path), artifact_path)
        shutil.rmtree(path, ignore_errors=True)


def load_servable(tracking_uri: str, model_uri: str, dst: Path | None = None):
    """The pyfunc model at `model_uri` (`models:/<name>@<alias>` or `models:/<name>/<version>`) in that store.

    Resolved through a client bound to `tracking_uri`, then loaded from a local copy, so no process-global
    MLflow URI is changed (tests and tasks in one process may talk to different stores).
    """
    from tasks.errors import GreenlaneError

    match = re.fullmatch(r"models:/([^@/]+)(?:@([^/]+)|/(\d+))", model_uri)
    if match is None:
        raise GreenlaneError(f"model URI {model_uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")
    name, alias, number = match.groups()
    c = client(tracking_uri)
    version = c.get_model_version_by_alias(name, alias) if alias else c.get_model_version(name, number)
    run_id, artifact_path = version.source.removeprefix("runs:/").split("/", 1)
    dst = Path(dst or tempfile.mkdtemp(prefix="greenlane-servable-"))
    return mlflow.pyfunc.load_model(c.download_artifacts(run_id, artifact_path, str(dst)))
