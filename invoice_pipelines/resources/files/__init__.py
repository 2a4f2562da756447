"""The files' edge: where supplier invoices arrive and what we produce is kept, local folders or S3.
Plain stores (`files`, `uploads`, `s3_objects`), their Dagster resources (`file_stores`,
`upload_stores`, `s3`), and which of them the settings choose (`stores`)."""
