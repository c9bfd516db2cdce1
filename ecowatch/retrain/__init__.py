"""The retraining loop: new labels in, a challenger trained, promoted only if it beats the champion.

Modules:

- :mod:`~ecowatch.retrain.labels`: :class:`LabelledBox`, one labelled box or whole image of any
  source, merging labelled sets and the labelled set's fingerprint.
- :mod:`~ecowatch.retrain.intake`: readers of COCO Camera Traps, Camtrap DP (human
  classifications), station/species folders; :mod:`~ecowatch.retrain.timelapse`: Timelapse CSV
  exports (and review worklists filled in by people).
- :mod:`~ecowatch.retrain.config`: ``conf/retrain.yaml``.
- :mod:`~ecowatch.retrain.state`: the state file (last fingerprint, the fixed holdout locations).
- :mod:`~ecowatch.retrain.holdout`: choosing the holdout locations once, and evaluating a
  checkpoint on the holdout crops.
- :mod:`~ecowatch.retrain.promotion`: the promotion rule, a pure function.
- :mod:`~ecowatch.retrain.journal`: the offline tracking journal and its replay (an unreachable
  MLflow server loses nothing).
- :mod:`~ecowatch.retrain.context_hook`: the context-priors refit step.
- :mod:`~ecowatch.retrain.worklist`: the review worklist after a nightly run.

``pipelines/retrain.py`` composes them into ``ecowatch retrain``. Importing this package imports
neither torch nor MLflow.
"""
