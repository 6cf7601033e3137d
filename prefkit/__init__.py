"""prefkit: preference data preparation and DPO, end to end."""

__version__ = "0.1.0"
