"""Everyone's Dagster kit, a floor below the areas (dagster-open-platform keeps its own in a
`lib/` beside its definitions): the organizations' partitions and the tags a run carries
(`partitions`), the refusals a run says in one sentence (`refusals`, with `read_only`: whether an
organization's data may change), the check results and metadata the UI shows
(`asset_metadata`), the turns a sensor takes (`turns`), the organizations automatic work serves
(`automation`), a period's runs a few a tick (`periods` and its sensor factory `sensors`), and
the run coordinator (`run_coordinator`). The organizations' own area (their lifecycle, commands,
asset and sensor) is tenants/, which nothing outside it imports but the list of areas.

Importing this package imports nothing: a command that only reads loads `read_only` alone."""
