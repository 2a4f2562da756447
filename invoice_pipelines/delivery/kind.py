"""The name of the delivery area's kind of batch job (`delivery/batch.py` declares it), apart so
that the command line registers the kind without loading it."""

COMMUNICATIONS = "communications"
