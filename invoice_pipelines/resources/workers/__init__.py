"""The worker processes' edge: warm workers with a time and memory limit per item (`worker_pool`),
the warm pool runs share (`parse_server`), the Dagster resource that owns one (`pool_resource`),
thread pools that give up their queued work on an interrupt (`thread_pools`), and every process
of `make run` ending within the stop's grace period (`stop_deadline`)."""
