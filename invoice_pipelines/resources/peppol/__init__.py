"""The Peppol edge: an access point's phase4-style HTTP API in plain Python (`transport`), and the
`peppol_access_point` resource that hands a run the transport (`access_point`)."""
