"""Loading a base model safely: what is refused before transformers runs anything."""

import json

import pytest

from tasks.errors import GreenlaneError
from tasks.models import check_model_dir


def test_a_model_that_needs_its_own_code_is_refused_before_loading(tmp_path):
    model = tmp_path / "custom"
    model.mkdir()
    from safetensors.numpy import save_file
    import numpy as np

    save_file({"w": np.zeros(2, dtype=np.float32)}, str(model / "model.safetensors"))  # check_model_dir reads its header
    (model / "config.json").write_text(json.dumps({"model_type": "my_arch", "auto_map": {"AutoConfig": "my.Cfg"}}))
    with pytest.raises(GreenlaneError, match=r"model type 'my_arch' is defined only by the repository's own Python code"):
        check_model_dir(model)
    # auto_map beside an architecture transformers ships (e.g. Phi-3's repositories): loads without remote code
    (model / "config.json").write_text(json.dumps({"model_type": "phi3", "auto_map": {"AutoConfig": "my.Cfg"}}))
    assert check_model_dir(model) == model.resolve()
