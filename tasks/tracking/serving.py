"""Variants logged as MLflow pyfunc models, so a registry alias is servable.

`mlflow.pyfunc.load_model("models:/<name>@champion-<target>")` gives a model
whose `predict(["prompt", ...], params={"max_new_tokens": 64, "temperature": 0.0,
"seed": 0})` returns generated text, for every variant kind: it loads the
variant in its own runtime (`tasks.runtimes`: transformers for checkpoints,
llama.cpp for GGUF, onnxruntime-genai for ONNX), so what is served is what was
measured. The params are in the logged signature: MLflow drops params a model's
signature does not declare.

The variant directory travels inside the MLflow model as its one artifact;
the run's `model` artifact path holds the MLmodel file, so the registered
version's source `runs:/<run>/model` is the servable model. `GREENLANE_DEVICE`
(`cpu`, the default, or `cuda`) says where a loaded servable runs.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import infer_signature

from tasks.tracking.runs import client

ARTIFACT = "variant"
DEVICE_ENV = "GREENLANE_DEVICE"
# Generation params a caller may pass to predict, with their defaults (temperature 0: greedy).
PARAMS = {"max_new_tokens": 64, "temperature": 0.0, "seed": 0}
EXAMPLE = ["Name a colour."]  # shown with the model in MLflow; only checked against the signature at save
# What loading needs beyond greenlane itself; pinned to what this environment runs (no inference at save time,
# which would load the model in a subprocess). transformers is always needed: every runtime tokenizes with the
# variant's Hugging Face tokenizer.
_REQUIREMENTS = ("torch", "transformers", "safetensors", "accelerate", "bitsandbytes", "optimum-quanto", "mlflow")
# The distribution each non-default runtime loads with.
_RUNTIME_REQUIREMENTS = {"llama.cpp": "llama-cpp-python", "onnxruntime-genai": "onnxruntime-genai"}


class GreenlaneLM(mlflow.pyfunc.PythonModel):
    """Chat-formatted generation from a greenlane variant directory, in the variant's runtime."""

    def load_context(self, context) -> None:
        from tasks import runtimes

        self.runtime = runtimes.load(context.artifacts[ARTIFACT], os.environ.get(DEVICE_ENV, "cpu"))

    # A DataFrame is what MLflow hands over once the logged signature is enforced (a list of prompts becomes
    # one column); with a hint it infers a signature from, such as list[str], it would replace the logged one
    # and its params.
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> list[str]:
        from tasks.runtimes.base import chat_ids

        params = {**PARAMS, **(params or {})}
        tokenizer = self.runtime.tokenizer
        outputs = []
        for prompt in model_input.iloc[:, 0].astype(str):
            generation = self.runtime.generate(
                chat_ids(tokenizer, prompt), int(params["max_new_tokens"]), ignore_eos=False,
                temperature=float(params["temperature"]), seed=int(params["seed"]))
            outputs.append(tokenizer.decode(generation.token_ids, skip_special_tokens=True))
        return outputs


def requirements(variant_dir: Path) -> list[str]:
    """Pinned pip requirements for loading `variant_dir`: the transformers stack, plus its runtime's library."""
    from tasks.errors import GreenlaneError
    from tasks.runtimes import runtime_of

    names = list(_REQUIREMENTS)
    runtime = runtime_of(variant_dir)
    if runtime in _RUNTIME_REQUIREMENTS:
        names.append(_RUNTIME_REQUIREMENTS[runtime])
    try:
        return [f"{name}=={version(name)}" for name in names]
    except PackageNotFoundError as err:
        raise GreenlaneError(f"cannot log variant {variant_dir} as a servable: its runtime {runtime} needs the "
                             f"python package {err.name}, which is not installed here") from None


def log_servable(tracking_uri: str, run_id: str, variant_dir: Path, artifact_path: str = "model") -> None:
    """Save the variant as a pyfunc model locally, then log it under the run's `artifact_path`."""
    pip_requirements = requirements(variant_dir)
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
                signature=infer_signature(EXAMPLE, ["text"], params=PARAMS), input_example=(EXAMPLE, PARAMS),
                pip_requirements=pip_requirements,
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
    local, _ = _download(tracking_uri, model_uri, dst)
    return mlflow.pyfunc.load_model(local)


def fetch_servable(tracking_uri: str, model_uri: str, dst: Path | None = None) -> dict:
    """The registered version at `model_uri`, downloaded but not loaded (`greenlane serve` loads the variant in its
    runtime itself): {name, version, run_id, variant_dir, metrics (its run's), tags (its run's)}."""
    from mlflow.models import Model

    local, version = _download(tracking_uri, model_uri, dst)
    pyfunc_conf = Model.load(local).flavors["python_function"]
    run = client(tracking_uri).get_run(version.run_id)
    return {"name": version.name, "version": str(version.version), "run_id": version.run_id,
            "variant_dir": Path(local) / pyfunc_conf["artifacts"][ARTIFACT]["path"],
            "metrics": dict(run.data.metrics), "tags": dict(run.data.tags)}


def _download(tracking_uri: str, model_uri: str, dst: Path | None):
    """(local MLmodel directory, model version) of `model_uri`, resolved in that store and downloaded to `dst`."""
    from mlflow.exceptions import MlflowException

    from tasks.errors import GreenlaneError

    match = re.fullmatch(r"models:/([^@/]+)(?:@([^/]+)|/(\d+))", model_uri)
    if match is None:
        raise GreenlaneError(f"model URI {model_uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")
    name, alias, number = match.groups()
    c = client(tracking_uri)
    try:
        version = c.get_model_version_by_alias(name, alias) if alias else c.get_model_version(name, number)
    except MlflowException:
        raise GreenlaneError(f"no model version {model_uri} at {tracking_uri}; run `greenlane run` first "
                             "(or check the alias with `greenlane champion`)") from None
    run_id, artifact_path = version.source.removeprefix("runs:/").split("/", 1)
    dst = Path(dst or tempfile.mkdtemp(prefix="greenlane-servable-"))
    return c.download_artifacts(run_id, artifact_path, str(dst)), version
