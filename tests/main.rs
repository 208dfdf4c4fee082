//! One integration-test binary for the whole workspace (saves link time); each module is a suite.

mod cli;
