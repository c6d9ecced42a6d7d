//! The share HTTP tracker.
