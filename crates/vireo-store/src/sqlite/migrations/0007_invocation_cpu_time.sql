-- CPU time the invocation used on the server's threads (guest code and host calls made for it),
-- summed over the executions of a retried async invocation.
ALTER TABLE invocations ADD COLUMN cpu_us INTEGER NOT NULL DEFAULT 0;
