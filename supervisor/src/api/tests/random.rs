//! Decoders face whatever a client (or a broken server) sends: none of
//! them may panic, whatever the bytes.

use crate::api::*;

/// xorshift64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that look like JSON often enough to reach the field checks.
const ALPHABET: &[u8] = b"{}[]\":,0123456789-.eE truefalsnul\\version\x00\xff\xc3\n";

fn decode_all(bytes: &[u8]) {
    let _ = decode_request(bytes);
    let _ = decode_response(bytes);
    let _ = decode_follow_line(bytes);
    let _ = frame_request(bytes);
}

#[test]
fn decoders_never_panic_on_random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let len = rng.below(200);
        let from_alphabet = rng.next().is_multiple_of(2);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if from_alphabet {
                    ALPHABET[rng.below(ALPHABET.len())]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        decode_all(&bytes);
    }
}

#[test]
fn decoders_never_panic_on_mutated_messages() {
    let seeds: Vec<Vec<u8>> = vec![
        encode_request(&Request::Logs {
            name: "web".into(),
            lines: Some(3),
            follow: true,
        }),
        encode_request(&Request::Exec {
            name: "web".into(),
            argv: vec!["sh".into()],
        }),
        encode_request(&Request::Power {
            action: Power::Halt,
        }),
        encode_response(&Response::Success(Outcome::Logs(LogsResult {
            lines: vec![LogLine {
                seq: 1,
                time_ms: 2,
                stream: Stream::Stdout,
                text: "x".into(),
            }],
        }))),
        encode_response(&Response::Success(Outcome::Exec(ExecResult {
            exit_code: 2,
            stdout: "out\n".into(),
            stderr: "err".into(),
            truncated: true,
        }))),
        encode_response(&Response::error(ErrorCode::NotFound, "no")),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..3000 {
        let mut bytes = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, rng.next() as u8),
            }
            if bytes.is_empty() {
                break;
            }
        }
        decode_all(&bytes);
    }
}
