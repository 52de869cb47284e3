//! The command line of `berth init`: `[-g] [-s] [--] CMD [ARG…]`.
//!
//! Options end at `--` or at the first word that is not an option (getopt's
//! `+` mode, as tini parses), so `berth init sh -c 'x'` passes `-c` to sh.
//! Flags may be combined (`-gs`).

use thiserror::Error;

pub const USAGE: &str = "usage: berth init [-g] [-s] [--] CMD [ARG...]
Runs CMD as the child of a minimal init: reaps every zombie, forwards
signals to CMD and exits with CMD's status (its code, or 128 + signal).
  -g  forward signals to CMD's whole process group
  -s  register as a child subreaper (needed unless berth is PID 1)";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-g`: signal the child's process group rather than the child.
    pub process_group: bool,
    /// `-s`: become a child subreaper (PR_SET_CHILD_SUBREAPER).
    pub subreaper: bool,
    /// The command and its arguments; never empty.
    pub command: Vec<String>,
}

/// Why the command line was not run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("help requested")]
    Help,
    #[error("unknown option -{0}")]
    UnknownOption(char),
    #[error("no command given")]
    NoCommand,
}

/// Parses the words after `init`.
pub fn parse(args: &[String]) -> Result<Options, ArgsError> {
    let mut process_group = false;
    let mut subreaper = false;
    let mut rest = args;
    while let Some((word, tail)) = rest.split_first() {
        if word == "--" {
            rest = tail;
            break;
        }
        if word == "--help" {
            return Err(ArgsError::Help);
        }
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break; // the command; a lone "-" is a (strange) command name too
        };
        for flag in flags.chars() {
            match flag {
                'g' => process_group = true,
                's' => subreaper = true,
                'h' => return Err(ArgsError::Help),
                other => return Err(ArgsError::UnknownOption(other)),
            }
        }
        rest = tail;
    }
    if rest.is_empty() {
        return Err(ArgsError::NoCommand);
    }
    Ok(Options {
        process_group,
        subreaper,
        command: rest.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let ok = |g: bool, s: bool, cmd: &[&str]| {
            Ok(Options {
                process_group: g,
                subreaper: s,
                command: cmd.iter().map(|w| w.to_string()).collect(),
            })
        };
        // (words after `init`, result)
        let table: &[(&[&str], Result<Options, ArgsError>)] = &[
            (&["--", "sh"], ok(false, false, &["sh"])),
            (
                &["sh", "-c", "exit 3"],
                ok(false, false, &["sh", "-c", "exit 3"]),
            ),
            (&["-g", "--", "sh"], ok(true, false, &["sh"])),
            (&["-s", "sh"], ok(false, true, &["sh"])),
            (
                &["-g", "-s", "--", "sh", "-x"],
                ok(true, true, &["sh", "-x"]),
            ),
            (&["-gs", "--", "sh"], ok(true, true, &["sh"])),
            (
                &["-sg", "sh", "--", "-g"],
                ok(true, true, &["sh", "--", "-g"]),
            ),
            (&["--", "-g"], ok(false, false, &["-g"])),
            (&["--", "--"], ok(false, false, &["--"])),
            (&["-", "x"], ok(false, false, &["-", "x"])),
            (&[], Err(ArgsError::NoCommand)),
            (&["--"], Err(ArgsError::NoCommand)),
            (&["-g", "-s"], Err(ArgsError::NoCommand)),
            (&["-x", "sh"], Err(ArgsError::UnknownOption('x'))),
            (&["-gv", "sh"], Err(ArgsError::UnknownOption('v'))),
            (&["-h"], Err(ArgsError::Help)),
            (&["--help", "sh"], Err(ArgsError::Help)),
        ];
        for (words, want) in table {
            let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            assert_eq!(&parse(&args), want, "{words:?}");
        }
    }
}
