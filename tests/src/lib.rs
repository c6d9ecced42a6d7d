//! Helpers shared by the workspace's end-to-end and interop tests (in `tests/tests/`).

pub mod netns;
pub mod ns_tracker;
pub mod tools;
pub mod transmission;
