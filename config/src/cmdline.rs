//! `berth.*` options on the kernel command line (`/proc/cmdline`).
//!
//! Words are split the way the kernel's `next_arg()` does: whitespace
//! separates words and double quotes group spaces into one word; the quote
//! characters themselves are dropped (`berth.x="a b"` has value `a b`).
//! Words that do not start with `berth.` belong to the kernel or to others
//! and are ignored. A later occurrence of an option overrides an earlier one.
//!
//! Nothing here is fatal: PID 1 must boot with a typo on the command line,
//! so an unknown option or a bad value is recorded (for PID 1 to log) and
//! the option keeps the value it had. The one exception is `berth.verity=`:
//! a value that is not a root hash records [`RootVerity::Invalid`], on which
//! stage 0 refuses to mount the root, since booting an unverified root when
//! verification was asked for would defeat it.

use std::time::Duration;

const PREFIX: &str = "berth.";
const DEFAULT_ROOT_WAIT: Duration = Duration::from_secs(10);
/// Root filesystem types PID 1 can mount (`berth.rootfstype=`).
const ROOTFS_TYPES: &[&str] = &["erofs", "squashfs"];

/// What PID 1 does when boot fails or berth cannot continue (`berth.panic=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PanicAction {
    #[default]
    Reboot,
    Halt,
    Poweroff,
}

impl PanicAction {
    /// Every action, in the order error messages list them.
    pub const ALL: [PanicAction; 3] = [
        PanicAction::Reboot,
        PanicAction::Halt,
        PanicAction::Poweroff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PanicAction::Reboot => "reboot",
            PanicAction::Halt => "halt",
            PanicAction::Poweroff => "poweroff",
        }
    }
}

/// Whether the root image is verified (`berth.verity=`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RootVerity {
    /// No `berth.verity=`: the root is mounted as it is, with a warning.
    #[default]
    Off,
    /// `berth.verity=HEX`: the dm-verity root hash (sha256), lower case.
    RootHash(String),
    /// `berth.verity=` with something that is not a root hash: stage 0
    /// stops rather than mount the root unverified.
    Invalid,
}

/// Hex digits of a sha256 root hash.
pub const ROOT_HASH_HEX_LEN: usize = 64;

/// The `berth.*` options, with defaults for those not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCmdline {
    /// `berth.root=`: the block device holding the root image, overriding
    /// the search by partition name; `None` = the partition of the slot.
    pub root: Option<String>,
    /// `berth.slot=a|b`: the root slot to boot, found as the GPT partition
    /// named `ROOT-A` or `ROOT-B`.
    pub slot: char,
    /// `berth.rootfstype=` (`erofs` or `squashfs`); `None` = detect.
    pub rootfstype: Option<String>,
    /// `berth.rootwait=SECONDS` (integer or decimal): how long to wait for
    /// the root device to appear.
    pub root_wait: Duration,
    /// `berth.panic=reboot|halt|poweroff`.
    pub panic: PanicAction,
    /// `berth.debug` (flag, or `=1`, `=0`, `=true`, `=false`).
    pub debug: bool,
    /// `berth.verity=ROOTHASH`: 64 hex digits.
    pub verity: RootVerity,
    /// Whole `berth.*` words that are not recognised, to be logged.
    pub unknown: Vec<String>,
    /// One message per recognised option whose value was rejected.
    pub invalid: Vec<String>,
}

impl Default for KernelCmdline {
    fn default() -> Self {
        KernelCmdline {
            root: None,
            slot: 'a',
            rootfstype: None,
            root_wait: DEFAULT_ROOT_WAIT,
            panic: PanicAction::default(),
            debug: false,
            verity: RootVerity::Off,
            unknown: Vec::new(),
            invalid: Vec::new(),
        }
    }
}

impl KernelCmdline {
    /// Parses a whole command line such as the contents of `/proc/cmdline`.
    pub fn parse(cmdline: &str) -> KernelCmdline {
        let mut parsed = KernelCmdline::default();
        for word in split_words(cmdline) {
            let Some(option) = word.strip_prefix(PREFIX) else {
                continue;
            };
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (option, None),
            };
            if let Err(problem) = parsed.apply(name, value) {
                match problem {
                    Problem::Unknown => parsed.unknown.push(word.clone()),
                    Problem::Invalid(message) => parsed.invalid.push(message),
                }
            }
        }
        parsed
    }

    /// Sets one option; on a bad value the field is left unchanged.
    fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), Problem> {
        // The value kept may come from an earlier word, quoted on the
        // command line and holding a newline: escape it, so one message
        // stays one log line.
        let invalid = |what: String, keeping: &str| {
            Problem::Invalid(format!(
                "berth.{name}: {what}; using {}",
                keeping.escape_debug()
            ))
        };
        match name {
            "root" => match value {
                Some(device) if !device.is_empty() => self.root = Some(device.to_owned()),
                _ => {
                    let keeping = self.root.as_deref().unwrap_or("the slot partition");
                    return Err(invalid("expected a device path".into(), keeping));
                }
            },
            "slot" => match value {
                Some("a" | "A") => self.slot = 'a',
                Some("b" | "B") => self.slot = 'b',
                _ => {
                    let what = format!(
                        "unknown slot {} (expected a or b)",
                        quote(value.unwrap_or(""))
                    );
                    return Err(invalid(what, &self.slot.to_string()));
                }
            },
            "rootfstype" => match value {
                Some(fs) if ROOTFS_TYPES.contains(&fs) => self.rootfstype = Some(fs.to_owned()),
                _ => {
                    let keeping = self.rootfstype.as_deref().unwrap_or("detection");
                    let what = format!(
                        "unknown filesystem {} (expected {})",
                        quote(value.unwrap_or("")),
                        ROOTFS_TYPES.join(", ")
                    );
                    return Err(invalid(what, keeping));
                }
            },
            "rootwait" => match value.and_then(parse_seconds) {
                Some(wait) => self.root_wait = wait,
                None => {
                    let what = format!(
                        "invalid duration {} (expected seconds, such as 10 or 2.5)",
                        quote(value.unwrap_or(""))
                    );
                    let keeping = format!("{} s", self.root_wait.as_secs_f64());
                    return Err(invalid(what, &keeping));
                }
            },
            "panic" => match PanicAction::ALL
                .into_iter()
                .find(|a| Some(a.as_str()) == value)
            {
                Some(action) => self.panic = action,
                None => {
                    let expected: Vec<&str> = PanicAction::ALL.iter().map(|a| a.as_str()).collect();
                    let what = format!(
                        "unknown action {} (expected {})",
                        quote(value.unwrap_or("")),
                        expected.join(", ")
                    );
                    return Err(invalid(what, self.panic.as_str()));
                }
            },
            "debug" => match value {
                None | Some("1") | Some("true") => self.debug = true,
                Some("0") | Some("false") => self.debug = false,
                Some(other) => {
                    let what = format!(
                        "invalid value {} (expected 1, 0, true or false)",
                        quote(other)
                    );
                    return Err(invalid(what, if self.debug { "true" } else { "false" }));
                }
            },
            "verity" => match value.and_then(parse_root_hash) {
                Some(hash) => self.verity = RootVerity::RootHash(hash),
                None => {
                    // Fail closed: a later bad value also cancels an
                    // earlier good one.
                    self.verity = RootVerity::Invalid;
                    return Err(Problem::Invalid(format!(
                        "berth.verity: invalid root hash {} (expected {ROOT_HASH_HEX_LEN} hex digits); the root will not be mounted unverified",
                        quote(value.unwrap_or(""))
                    )));
                }
            },
            _ => return Err(Problem::Unknown),
        }
        Ok(())
    }
}

/// A sha256 root hash: exactly 64 hex digits, returned in lower case.
pub fn parse_root_hash(s: &str) -> Option<String> {
    (s.len() == ROOT_HASH_HEX_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_ascii_lowercase())
}

enum Problem {
    Unknown,
    Invalid(String),
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

/// Splits like the kernel: whitespace outside double quotes ends a word;
/// quote characters are removed.
fn split_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut in_quote = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                in_word = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `SECONDS` as a non-negative integer or decimal (`10`, `2.5`, `.5`);
/// digits past nanoseconds are ignored. No sign, exponent, `inf` or `nan`,
/// which `f64::from_str` would accept.
fn parse_seconds(s: &str) -> Option<Duration> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().ok()?
    };
    let mut nanos: u32 = 0;
    for (i, digit) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(digit - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests;
