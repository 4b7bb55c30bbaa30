//! Namespace scenario harness.
