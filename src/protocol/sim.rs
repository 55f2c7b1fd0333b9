//! Deterministic simulation: N endpoints, virtual time, seeded loss/duplication/reordering.
