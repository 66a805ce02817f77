"""Typed configuration, loaded and validated in one place.

A run's configuration is a YAML file (configs/default.yaml) plus `key=value`
overrides. Everything is checked here, at load: a bad value fails with a
one-line `GreenlaneError` naming the field and what is allowed, never deep
inside a task. Each field's docstring is its documentation.

The package: `sections` (variants, gates, targets, benchmark, eval, carbon, MLflow) and `serve` hold the typed
sections, `load` the whole `GreenlaneConfig` and how it is read, `checks` the bounds and rules they share,
`paths` where files live. Import from `tasks.config`.
"""

from tasks.config.checks import (MAX_BATCH_SIZE, MAX_GRID_CELLS, MAX_GRID_TOKENS, MAX_NEW_TOKENS, MAX_PASSES,
                                 MAX_PROMPTS, MAX_SEED, MAX_THREADS, check_registered_model, check_store_writable,
                                 check_tracking_uri)
from tasks.config.load import (GATE_PARAMS, GreenlaneConfig, config_from_dict, config_from_params, deep_merge,
                               load_config, load_ctx_config, params_config_file, parse_overrides)
from tasks.config.paths import BUNDLED_MODEL, DEFAULT_CONFIG, REPO_ROOT, greenlane_home, run_dir, safe_name
from tasks.config.sections import (BenchmarkConfig, CarbonConfig, EnergyGridConfig, EvalConfig, GateConfig,
                                   MethodStep, MlflowConfig, TargetConfig, VariantSpec)
from tasks.config.serve import ServeConfig

__all__ = [
    "BUNDLED_MODEL", "DEFAULT_CONFIG", "GATE_PARAMS", "MAX_BATCH_SIZE", "MAX_GRID_CELLS", "MAX_GRID_TOKENS",
    "MAX_NEW_TOKENS", "MAX_PASSES", "MAX_PROMPTS", "MAX_SEED", "MAX_THREADS", "REPO_ROOT", "BenchmarkConfig",
    "CarbonConfig", "EnergyGridConfig", "EvalConfig", "GateConfig", "GreenlaneConfig", "MethodStep", "MlflowConfig",
    "ServeConfig", "TargetConfig", "VariantSpec", "check_registered_model", "check_store_writable",
    "check_tracking_uri", "config_from_dict", "config_from_params", "deep_merge", "greenlane_home", "load_config",
    "load_ctx_config", "params_config_file", "parse_overrides", "run_dir", "safe_name",
]
