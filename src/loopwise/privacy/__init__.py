"""Privacy by design: consent categories that drive the loop, a tamper-evident audit trail of
consent changes, and the retention job that purges old behavioural data."""
