"""Names of the working columns that travel with rows inside the pipeline, never into an output.

Each starts with ``__`` so it cannot collide with a source's own keys, and each is named here once:
where a row came from (``FILE``, ``LINE``), why it is dropped (``REASON``, ``DETAIL``: datatrove's
rule that the drop reason travels with the row), and the mix's bookkeeping (``ROW``, ``SOURCE``,
``COPY``). The model side reads ``FILE`` and ``LINE`` from here too.
"""

LINE = "__line"
"""1-based line (record) number in the input file."""
FILE = "__file"
"""Index of the input file in the run's list of files (or its name, where files are read one by one)."""
REASON = "__reason"
"""The reject reason of a row marked for the rejects file; null for a kept row."""
DETAIL = "__detail"
"""What exactly failed, for the rejects file."""
ROW = "__row"
"""Position of a pair in a pool that dedupe and mix remove from."""
SOURCE = "__source"
"""Index of the mix source a pair came from."""
COPY = "__copy"
"""Which repetition of a pair an upsampled mix source drew."""
