//! The parts of `berth` that host tests drive directly: networking. The
//! binary (`main.rs`) is everything else; host tests that need root and
//! network namespaces link this library instead of booting a VM.

pub mod net;
