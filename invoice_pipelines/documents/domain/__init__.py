"""What the documents area knows and does, apart from Dagster and the command line: the modules its
Dagster objects (the modules one level up) and its commands (`commands/`) call."""
