"""Performance benchmarks: figures, not tests (run ``./scripts/bench``; see README "Benchmarks")."""
