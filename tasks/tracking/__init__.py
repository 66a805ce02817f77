"""The only code that talks to MLflow: experiments, runs, metrics, artifacts, registry, aliases."""
