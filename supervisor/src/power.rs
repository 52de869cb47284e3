//! Which power action a signal to PID 1 asks for: the conventions existing
//! tools already use (busybox `reboot`/`halt`/`poweroff`, the kernel's
//! ctrl-alt-del once `reboot(CAD_OFF)` is set, UPS daemons, systemd's
//! `systemctl` through SIGRTMIN+3/4/5).

pub use berth_config::cmdline::PanicAction as PowerAction;

/// glibc's SIGRTMIN as applications see it (the kernel's first two
/// real-time signals are reserved by the C library).
pub const SIGRTMIN: i32 = 34;

/// Every signal that requests a power action, for registering handlers.
pub const SIGNALS: &[i32] = &[
    libc_sig::TERM,
    libc_sig::INT,
    libc_sig::USR1,
    libc_sig::USR2,
    libc_sig::PWR,
    SIGRTMIN + 3,
    SIGRTMIN + 4,
    SIGRTMIN + 5,
];

/// x86-64 numbers (signal(7)); kept here so this module stays pure.
mod libc_sig {
    pub const INT: i32 = 2;
    pub const USR1: i32 = 10;
    pub const USR2: i32 = 12;
    pub const TERM: i32 = 15;
    pub const PWR: i32 = 30;
}

/// The action a signal to PID 1 requests, if any.
pub fn action_for_signal(signal: i32) -> Option<PowerAction> {
    match signal {
        libc_sig::TERM | libc_sig::INT => Some(PowerAction::Reboot),
        libc_sig::USR1 => Some(PowerAction::Halt),
        libc_sig::USR2 | libc_sig::PWR => Some(PowerAction::Poweroff),
        s if s == SIGRTMIN + 3 => Some(PowerAction::Halt),
        s if s == SIGRTMIN + 4 => Some(PowerAction::Poweroff),
        s if s == SIGRTMIN + 5 => Some(PowerAction::Reboot),
        _ => None,
    }
}

/// Linux input event codes (linux/input-event-codes.h).
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;
/// `struct input_event` on x86-64: a 16-byte timeval, type u16, code u16,
/// value i32.
pub const INPUT_EVENT_SIZE: usize = 24;

/// Whether a buffer of input events holds a power-button press (key down:
/// value 1).
pub fn has_power_press(events: &[u8]) -> bool {
    events.chunks_exact(INPUT_EVENT_SIZE).any(|e| {
        let typ = u16::from_ne_bytes([e[16], e[17]]);
        let code = u16::from_ne_bytes([e[18], e[19]]);
        let value = i32::from_ne_bytes([e[20], e[21], e[22], e[23]]);
        typ == EV_KEY && code == KEY_POWER && value == 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_table() {
        let table: &[(i32, Option<PowerAction>)] = &[
            (15, Some(PowerAction::Reboot)),   // busybox reboot
            (2, Some(PowerAction::Reboot)),    // ctrl-alt-del
            (10, Some(PowerAction::Halt)),     // busybox halt
            (12, Some(PowerAction::Poweroff)), // busybox poweroff
            (30, Some(PowerAction::Poweroff)), // SIGPWR
            (37, Some(PowerAction::Halt)),     // systemctl halt
            (38, Some(PowerAction::Poweroff)), // systemctl poweroff
            (39, Some(PowerAction::Reboot)),   // systemctl reboot
            (1, None),
            (9, None),
            (17, None),
            (36, None),
            (40, None),
        ];
        for (sig, want) in table {
            assert_eq!(action_for_signal(*sig), *want, "signal {sig}");
        }
        for sig in SIGNALS {
            assert!(
                action_for_signal(*sig).is_some(),
                "registered {sig} has no action"
            );
        }
    }

    fn event(typ: u16, code: u16, value: i32) -> Vec<u8> {
        let mut e = vec![0u8; 16];
        e.extend(typ.to_ne_bytes());
        e.extend(code.to_ne_bytes());
        e.extend(value.to_ne_bytes());
        e
    }

    #[test]
    fn power_button_events() {
        let press = event(1, 116, 1);
        let release = event(1, 116, 0);
        let sync = event(0, 0, 0);
        let other_key = event(1, 30, 1);
        let table: &[(Vec<u8>, bool)] = &[
            (press.clone(), true),
            (release.clone(), false),
            ([sync.clone(), press.clone(), sync.clone()].concat(), true),
            ([release, sync.clone()].concat(), false),
            (other_key, false),
            (press[..20].to_vec(), false),
            (Vec::new(), false),
        ];
        for (buf, want) in table {
            assert_eq!(has_power_press(buf), *want, "{buf:?}");
        }
    }
}
