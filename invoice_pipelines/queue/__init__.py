"""The batch-job queue every kind of job uses (invoicing, documents, communications, credit notes):
requests and their validation (`requests`), job state, cancel and retry (`jobs`), claiming,
progress and finishing exactly once (`transitions`), jobs over sales invoices (`items`), jobs whose
items each commit with their outcome (`atomic`: credit notes, issued exactly once), stuck-job
cleanup (`stuck`) and daily stats (`stats`). Nothing outside this package writes `batch_jobs`
rows."""
