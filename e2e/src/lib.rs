//! Tollgate end-to-end test support: the echo backend and test harnesses.
