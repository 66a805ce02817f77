"""The fleet report: plots of plain records (plots.py), reading a pipeline run back (collect.py), the HTML (build.py)."""
