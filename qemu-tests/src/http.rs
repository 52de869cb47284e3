//! Fetching a page from the guest through QEMU's `hostfwd`, the way a user
//! on the host would (`curl http://127.0.0.1:PORT/`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One `GET /` (HTTP/1.0) to 127.0.0.1:`port`: the whole answer.
pub fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: berth\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// GETs `/` until the answer contains `want` (QEMU accepts the connection
/// before the guest listens) or `deadline` passes, then panics naming the
/// last answer or error.
pub fn get_until(port: u16, want: &str, deadline: Duration) -> String {
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < deadline {
        match get(port) {
            Ok(body) if body.contains(want) => return body,
            Ok(body) => last = format!("answer without {want:?}: {body:?}"),
            Err(e) => last = format!("error: {e}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no answer with {want:?} from 127.0.0.1:{port} in {deadline:?}; last: {last}");
}
