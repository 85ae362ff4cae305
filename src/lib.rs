//! Support for the black-box tests in `tests/`: they run the built binaries
//! against a temporary home directory, never the real one.
