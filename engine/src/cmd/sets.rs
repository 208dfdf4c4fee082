//! The sets family of commands.

use super::spec::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];
