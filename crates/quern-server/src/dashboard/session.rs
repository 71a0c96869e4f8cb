//! Dashboard sessions: a signed cookie instead of server-side session state, so the server
//! keeps holding nothing and a restart (which draws a new key) simply logs everyone out.
//!
//! The cookie `quern_session` is `<hex name>.<role>.<expiry ms>.<hex HMAC-SHA256>` over the
//! first three parts, with a key drawn when the server starts. It is
//! `HttpOnly` (scripts cannot read it) and `SameSite=Strict` (other sites cannot send it).
//!
//! CSRF: every change made with a session must carry the header `X-Quern-CSRF` (or, for the
//! logout form, the field `csrf`) equal to [`Sessions::csrf`] of the cookie: an HMAC of the
//! cookie under the same key, handed to the page in a `<meta>` tag. A page on another site can
//! neither read it nor compute it.

use ring::hmac;

use crate::config::Role;

/// The cookie's name.
pub const COOKIE: &str = "quern_session";
/// The header that carries the CSRF token on a change.
pub const CSRF_HEADER: &str = "x-quern-csrf";
/// How long a session lasts.
pub const LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// Who a valid cookie says the caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The token's name (for the audit log and the page header).
    pub name: String,
    pub role: Role,
    /// When the cookie stops being accepted, ms since the epoch.
    pub expires_at: i64,
}

/// Issues and checks session cookies.
pub struct Sessions {
    key: hmac::Key,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(<key>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Sessions {
    /// With `key` (any length; from config) or, without, 32 random bytes.
    pub fn new(key: Option<&[u8]>) -> Sessions {
        let bytes = match key {
            Some(k) => k.to_vec(),
            None => {
                let mut b = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                    .expect("the system random source works");
                b.to_vec()
            }
        };
        Sessions {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        }
    }

    /// The cookie value for `session`.
    pub fn issue(&self, session: &Session) -> String {
        let body = format!(
            "{}.{}.{}",
            hex(session.name.as_bytes()),
            session.role.as_str(),
            session.expires_at
        );
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", hex(tag.as_ref()))
    }

    /// The session a cookie value names, if its signature holds and it has not expired.
    pub fn check(&self, value: &str, now_ms: i64) -> Option<Session> {
        let (body, tag) = value.rsplit_once('.')?;
        hmac::verify(&self.key, body.as_bytes(), &unhex(tag)?).ok()?;
        let mut parts = body.split('.');
        let name = String::from_utf8(unhex(parts.next()?)?).ok()?;
        let role: Role = parts.next()?.parse().ok()?;
        let expires_at: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || expires_at <= now_ms {
            return None;
        }
        Some(Session {
            name,
            role,
            expires_at,
        })
    }

    /// The CSRF token that goes with a cookie value.
    pub fn csrf(&self, cookie: &str) -> String {
        let tag = hmac::sign(&self.key, format!("csrf|{cookie}").as_bytes());
        hex(&tag.as_ref()[..16])
    }

    /// Whether `presented` is the CSRF token of `cookie` (compared in constant time).
    pub fn csrf_ok(&self, cookie: &str, presented: &str) -> bool {
        let want = self.csrf(cookie);
        let mut diff = u8::from(want.len() != presented.len());
        for (i, x) in want.bytes().enumerate() {
            diff |= x ^ presented.as_bytes().get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value that stores `value` for the session's lifetime.
pub fn set_cookie(value: &str) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME_MS / 1000
    )
}

/// The `Set-Cookie` value that removes the session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            name: "ops.team".into(),
            role: Role::Operate,
            expires_at: 2_000,
        }
    }

    #[test]
    fn a_cookie_round_trips_and_expires() {
        let s = Sessions::new(None);
        let c = s.issue(&session());
        assert_eq!(s.check(&c, 1_999), Some(session()));
        assert_eq!(s.check(&c, 2_000), None);
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_refused() {
        let s = Sessions::new(Some(b"k1"));
        let c = s.issue(&session());
        let admin = c.replace(".operate.", ".admin.");
        assert_eq!(s.check(&admin, 0), None);
        assert_eq!(Sessions::new(Some(b"k2")).check(&c, 0), None);
        for junk in ["", ".", "zz.read.1.00", "a.b.c.d.e"] {
            assert_eq!(s.check(junk, 0), None, "{junk:?}");
        }
    }

    #[test]
    fn the_csrf_token_belongs_to_its_cookie() {
        let s = Sessions::new(None);
        let c = s.issue(&session());
        let t = s.csrf(&c);
        assert!(s.csrf_ok(&c, &t));
        assert!(!s.csrf_ok(&c, ""));
        assert!(!s.csrf_ok(
            &s.issue(&Session {
                expires_at: 3_000,
                ..session()
            }),
            &t
        ));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.append("cookie", "a=1; quern_session=xyz".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
