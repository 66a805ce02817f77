"""Carbon accounting: arithmetic on measured records, no MLflow and no torch.

- `accounting`: operational (E x PUE x CI) + embodied ((t / LT) x C_hw) grams, per piece of work or
  per 1k tokens, and cost.
- `hardware`: profiles (embodied kgCO2e, TDP, memory) with sources; ACT-derived where unpublished.
- `regions`: grid intensities (QC, CISO, PACE; countries by ISO-3 from codecarbon; hourly CSVs).
- `detect`: the local machine's profile (Jetson device tree, NVML GPU name, /proc/cpuinfo).
- `whatif`: rank (target, region/hour) placements by total carbon per 1k tokens.
"""
