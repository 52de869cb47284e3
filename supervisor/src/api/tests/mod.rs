//! Tests of the wire format: round trips, the exact bytes of a few
//! messages (the docs quote them), malformed input and a never-panics
//! loop over random bytes.

mod malformed;
mod random;
mod round_trip;
