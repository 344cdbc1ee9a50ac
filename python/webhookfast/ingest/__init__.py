"""The write path after decoding: ``handler`` (body → ``_core.decode`` → answer), ``batcher`` (group
commit into the store: bounded queue, flushers, deadlines) and ``spool`` (the local durable spool
for PostgreSQL outages and ``--ack spool``)."""
