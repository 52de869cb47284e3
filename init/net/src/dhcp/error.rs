//! Why a DHCP session could not be set up. Once running, a session does
//! not fail: send and receive errors are logged and retransmission copes.

/// Errors of [`super::Session::open`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{ifname}: create the dhcp socket")]
    Socket {
        ifname: String,
        #[source]
        source: nix::Error,
    },
    #[error("{ifname}: set {option} on the dhcp socket")]
    SocketOption {
        ifname: String,
        option: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{ifname}: bind the dhcp socket to 0.0.0.0:68")]
    Bind {
        ifname: String,
        #[source]
        source: nix::Error,
    },
}
