//! An error and its causes on one line, as berth prints them on the
//! console and in answers: `start web failed: create container web: …`.

/// `err`, then each of its sources, joined by `: `.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("start web")]
        Start(#[source] std::io::Error),
    }

    #[test]
    fn every_cause_follows_on_the_same_line() {
        let e = Outer::Start(std::io::Error::other("no such file"));
        assert_eq!(chain(&e), "start web: no such file");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }
}
