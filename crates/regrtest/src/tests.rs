//! Tests of the pure parts: the profiles file, and the verdicts drawn from recorded runs.

mod config;
mod results;
