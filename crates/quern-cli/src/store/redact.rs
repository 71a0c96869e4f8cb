//! Keeping a store URL's password out of messages, logs and reports.

/// A store URL without its password, for messages, logs and reports.
pub fn redact(url: &str) -> String {
    match userinfo(url) {
        Some(u) => url.replacen(u, "…", 1),
        None => url.to_string(),
    }
}

/// `msg` (an error about the store `url`) without the URL's password.
pub fn scrub(msg: &str, url: &str) -> String {
    match userinfo(url) {
        Some(u) => msg.replace(u, "…"),
        None => msg.to_string(),
    }
}

/// The `user:password` part of a Redis URL, if it has one.
fn userinfo(url: &str) -> Option<&str> {
    if !url.starts_with("redis") {
        return None;
    }
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let at = authority.rfind('@')?;
    Some(&authority[..at]).filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{redact, scrub};

    #[test]
    fn passwords_are_not_echoed() {
        assert_eq!(redact("redis://u:secret@h:6379/0"), "redis://…@h:6379/0");
        assert_eq!(
            redact("redis+cluster://u:secret@h:1,h:2/?prefix=a"),
            "redis+cluster://…@h:1,h:2/?prefix=a"
        );
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("sqlite://a@b.db"), "sqlite://a@b.db");
        assert_eq!(
            scrub(
                "bad URL \"redis://:pw@h/?x=1\" (node redis://:pw@h)",
                "redis://:pw@h/?x=1"
            ),
            "bad URL \"redis://…@h/?x=1\" (node redis://…@h)"
        );
    }
}
