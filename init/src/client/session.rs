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

#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    timeout: Duration,
    reader: BufReader<UnixStream>,
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
            reader: BufReader::new(stream),
        })
    }

    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let line = encode_request(request);
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(|source| match source.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => self.timed_out(),
                _ => ClientError::Send {
                    path: self.path.clone(),
                    source,
                },
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
