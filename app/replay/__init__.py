"""``deskstream replay``: a time range of a canonical topic into Parquet files or a topic.

``cli`` (the command), ``run`` (one replay, resumable), ``source`` (reading a range outside
any group), ``parquet`` and ``columns`` (the files and their columns; pyarrow, the analytics
extra), ``topic`` (copying to a topic), ``checkpoint``, ``progress``. The pure parts (job,
filters, spans, checkpoint values, progress text) are in ``streams.replay``.
"""
