"""The batch-job queue every kind of job uses (invoicing, documents, communications): requests
and their validation (`requests`), job state, cancel and retry (`jobs`), claiming, progress and
finishing exactly once (`transitions`), jobs over sales invoices (`items`), stuck-job cleanup
(`stuck`) and daily stats (`stats`). Nothing outside this package writes `batch_jobs` rows."""
