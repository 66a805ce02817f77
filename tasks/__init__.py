"""greenlane: the library the Airflow DAG tasks call.

Nothing heavy is imported here: the DAG files import from this package at
task run time only, and the CLI starts quickly.
"""

__version__ = "0.1.0"
