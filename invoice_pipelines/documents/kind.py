"""The name of the documents area's kind of batch job (`documents/batch.py` declares it), apart
so that the command line registers the kind without loading it."""

DOCUMENTS = "documents"
