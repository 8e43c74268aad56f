"""A training run as `keras-vae train` makes it.

- `config`: `RunConfig`, each setting of a run defined once;
- `run`: `train`, a run fresh or resumed from its checkpoints;
- `callbacks`: the sample grids, checkpoints, and clean stops;
- `checkpoints`: checkpoints written atomically, verified when resuming;
- `logs`: `TrainingLog`, TensorBoard events and `metrics.csv` by step.

Nothing is imported here, so that `config` imports without TensorFlow.
"""
