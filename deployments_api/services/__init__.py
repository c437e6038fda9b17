"""One function per use case. Each takes a UnitOfWork and owns its transaction."""
