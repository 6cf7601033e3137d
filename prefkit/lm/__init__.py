"""The model side: loading, scoring, DPO training on TRL, evaluation, comparison (``prefkit[train]``)."""
