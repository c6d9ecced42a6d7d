//! Helpers shared by the workspace's end-to-end and interop tests (in `tests/tests/`).

pub mod tools;
pub mod netns;
pub mod transmission;
