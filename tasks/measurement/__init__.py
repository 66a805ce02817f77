"""Measurement: energy meters, latency, accuracy and the benchmark runner.

Produces plain result records with units. Knows nothing of carbon or MLflow.
"""
