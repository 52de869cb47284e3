//! One connection to the control socket: send the request line, read
//! answer lines, each bounded in size and (until following) in time.
//!
//! The write side stays open while following: the server may take EOF on
//! its read side as the client leaving.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_supervisor::api::{encode_request, Request, MAX_RESPONSE};

use super::error::ClientError;
use super::remote::{Remote, Target};

/// The local socket or a node's API.
#[derive(Debug)]
enum Transport {
    Local(UnixStream),
    Remote(Box<Remote>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Local(s) => s.read(buf),
            Transport::Remote(r) => r.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Local(s) => s.write(buf),
            Transport::Remote(r) => r.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Local(s) => s.flush(),
            Transport::Remote(r) => r.flush(),
        }
    }
}

impl Transport {
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Transport::Local(s) => s.set_read_timeout(t),
            Transport::Remote(r) => r.stream.sock.set_read_timeout(t),
        }
    }

    /// A remote failure in words (alerts, a changed node certificate).
    fn explain(&self, e: &std::io::Error) -> Option<ClientError> {
        match self {
            Transport::Remote(r) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
                Some(r.explain(e))
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    timeout: Duration,
    reader: BufReader<Transport>,
}

impl Session {
    /// Connects and bounds every later read and write by `timeout`. A
    /// Unix socket connect does not wait on a network; it fails at once
    /// when nobody listens.
    pub fn open(path: &Path, timeout: Duration) -> Result<Session, ClientError> {
        let connect_err = |source| ClientError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(connect_err)?;
        Ok(Session {
            path: path.to_owned(),
            timeout,
            reader: BufReader::new(Transport::Local(stream)),
        })
    }

    /// Connects to a node's API (TLS, this operator's certificate).
    pub fn remote(target: &Target, timeout: Duration) -> Result<Session, ClientError> {
        let remote = super::remote::open(target, timeout)?;
        Ok(Session {
            path: PathBuf::from(remote.display()),
            timeout,
            reader: BufReader::new(Transport::Remote(Box::new(remote))),
        })
    }

    /// After an answer: a node seen for the first time is pinned.
    pub fn answered(&mut self) {
        if let Transport::Remote(r) = self.reader.get_mut() {
            r.answered();
        }
    }

    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let line = encode_request(request);
        let sent = self
            .reader
            .get_mut()
            .write_all(&line)
            .and_then(|()| self.reader.get_mut().flush());
        sent.map_err(|source| {
            if let Some(e) = self.reader.get_ref().explain(&source) {
                return e;
            }
            match source.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => self.timed_out(),
                _ => ClientError::Send {
                    path: self.path.clone(),
                    source,
                },
            }
        })
    }

    /// The next line, `None` once the server has closed the connection.
    pub fn receive(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_RESPONSE).unwrap_or(u64::MAX);
        let read = (&mut self.reader).take(limit).read_until(b'\n', &mut line);
        match read {
            Ok(0) => Ok(None),
            Ok(n) if n >= MAX_RESPONSE && line.last() != Some(&b'\n') => {
                Err(ClientError::TooLong {
                    path: self.path.clone(),
                })
            }
            Ok(_) => Ok(Some(line)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(self.timed_out())
            }
            Err(source) if self.reader.get_ref().explain(&source).is_some() => Err(self
                .reader
                .get_ref()
                .explain(&source)
                .unwrap_or(ClientError::Closed {
                    path: self.path.clone(),
                })),
            Err(source) => Err(ClientError::Receive {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Waits without limit from now on: a followed log may stay quiet for
    /// hours.
    pub fn wait_forever(&mut self) -> Result<(), ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|source| ClientError::Receive {
                path: self.path.clone(),
                source,
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout {
            path: self.path.clone(),
            timeout: self.timeout,
        }
    }
}
