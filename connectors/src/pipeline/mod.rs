//! Pipeline files: a TOML file naming a source, a chain of stages and a sink, read
//! into a validated description, checked against the environment, and built into a
//! runtime pipeline.
