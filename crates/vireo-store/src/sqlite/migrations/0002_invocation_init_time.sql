-- Time spent getting an instance ready (loading the version when cold, plus instantiation).
ALTER TABLE invocations ADD COLUMN init_us INTEGER NOT NULL DEFAULT 0;
