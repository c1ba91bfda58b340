//! Room patterns and the rights they grant.
//!
//! A token's `wsd` claim lists the rooms it may `read` (join and receive)
//! and `write` (publish into). Each entry is a pattern:
//!
//! - `*`: every room;
//! - `/news`: exactly the room `/news`;
//! - `/chat/*`: every room that starts with `/chat/`, at any depth
//!   (`/chat/a`, `/chat/a/b`, and `/chat/` itself), but **not** `/chat`:
//!   list `/chat` as well to cover it.
//!
//! A `*` anywhere else (`/chat*`, `/a/*/b`) makes the token malformed, so a
//! pattern never means more than it appears to. Rooms are compared byte for
//! byte as the request sent them, without percent-decoding, because that is
//! how the hub names rooms: `/caf%C3%A9` is the pattern for what a browser
//! sends for `/café`. A pattern is at most [`MAX_PATTERN_LEN`] bytes, has no
//! space, control character, `?` or `#` (no room has them), and a list has
//! at most [`MAX_PATTERNS`] entries.
//!
//! Joining needs `read`; `write` without `read` grants nothing, since the
//! connection is never admitted.

/// The most patterns in one list (`read` or `write`).
pub const MAX_PATTERNS: usize = 64;

/// The longest pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 256;

/// One compiled room pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: every room.
    Any,
    /// An exact room.
    Exact(Box<str>),
    /// `P/*`, held as its prefix `P/`: every room that starts with it.
    Prefix(Box<str>),
}

impl Pattern {
    /// Compiles a pattern, or `None` if it breaks the rules in the module
    /// doc.
    pub fn parse(s: &str) -> Option<Pattern> {
        if s == "*" {
            return Some(Pattern::Any);
        }
        if !s.starts_with('/') || s.len() > MAX_PATTERN_LEN {
            return None;
        }
        if s.bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
        {
            return None;
        }
        match s.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                Some(Pattern::Prefix(prefix.into()))
            }
            Some(_) => None,
            None if s.contains('*') => None,
            None => Some(Pattern::Exact(s.into())),
        }
    }

    /// Whether the pattern covers `room`.
    pub fn matches(&self, room: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(exact) => **exact == *room,
            Pattern::Prefix(prefix) => room.starts_with(&**prefix),
        }
    }
}

/// A compiled list of patterns: covers a room if any pattern does. A list
/// with `*` in it is held as `*` alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns(Box<[Pattern]>);

impl Patterns {
    /// No room at all.
    pub fn none() -> Patterns {
        Patterns::default()
    }

    /// Every room (`*`).
    pub fn any() -> Patterns {
        Patterns(Box::new([Pattern::Any]))
    }

    /// Compiles a list, or `None` if it is longer than [`MAX_PATTERNS`] or
    /// any entry is not a valid pattern.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Option<Patterns> {
        if list.len() > MAX_PATTERNS {
            return None;
        }
        let compiled = list
            .iter()
            .map(|s| Pattern::parse(s.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        if compiled.contains(&Pattern::Any) {
            return Some(Patterns::any());
        }
        Some(Patterns(compiled.into()))
    }

    /// Whether any pattern covers `room`.
    pub fn matches(&self, room: &str) -> bool {
        self.0.iter().any(|p| p.matches(room))
    }

    /// The compiled patterns.
    pub fn as_slice(&self) -> &[Pattern] {
        &self.0
    }
}

/// What a verified token (or anonymous access) allows, in every room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rights {
    read: Patterns,
    write: Patterns,
    expires_at: Option<u64>,
}

impl Rights {
    /// Rights from compiled patterns, valid until `expires_at` (Unix
    /// seconds; `None`: never).
    pub fn new(read: Patterns, write: Patterns, expires_at: Option<u64>) -> Rights {
        Rights {
            read,
            write,
            expires_at,
        }
    }

    /// `--auth-anonymous read`: read every room, write none, no expiry.
    pub fn anonymous() -> Rights {
        Rights::new(Patterns::any(), Patterns::none(), None)
    }

    /// Whether the rights allow joining and receiving from `room`.
    pub fn may_read(&self, room: &str) -> bool {
        self.read.matches(room)
    }

    /// Whether the rights allow publishing into `room`.
    pub fn may_write(&self, room: &str) -> bool {
        self.write.matches(room)
    }

    /// The Unix second from which the token is no longer accepted: its
    /// `exp` plus the leeway. `None` for anonymous access.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// The `read` patterns.
    pub fn read(&self) -> &Patterns {
        &self.read
    }

    /// The `write` patterns.
    pub fn write(&self) -> &Patterns {
        &self.write
    }

    /// The rights in one room, decided once: what a connection carries.
    pub fn for_room(&self, room: &str) -> RoomRights {
        RoomRights {
            read: self.may_read(room),
            write: self.may_write(room),
            expires_at: self.expires_at,
        }
    }
}

/// A connection's rights in its room, decided at upgrade: the hot path only
/// reads these fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomRights {
    /// May join and receive (always true for an admitted connection).
    pub read: bool,
    /// May publish; a data message without it is closed with
    /// [`super::CLOSE_POLICY`] and [`super::REASON_NOT_ALLOWED`].
    pub write: bool,
    /// The Unix second from which the token is no longer accepted (`exp`
    /// plus the leeway); the connection is closed then with
    /// [`super::REASON_EXPIRED`]. `None`: never.
    pub expires_at: Option<u64>,
}

impl RoomRights {
    /// Every right, forever: access control off.
    pub const UNRESTRICTED: RoomRights = RoomRights {
        read: true,
        write: true,
        expires_at: None,
    };

    /// Whether the token has expired at `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Seconds from `now` until expiry (0 if already expired), for arming
    /// the reactor's timer with its monotonic clock; `None`: never.
    pub fn seconds_left(&self, now: u64) -> Option<u64> {
        self.expires_at.map(|at| at.saturating_sub(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive twin: a glob where `*` matches any run of bytes (which, for
    /// a valid pattern, only ever ends it).
    fn glob(pattern: &[u8], room: &[u8]) -> bool {
        match (pattern.split_first(), room.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => {
                (0..=room.len()).any(|i| glob(rest, room.get(i..).unwrap_or_default()))
            }
            (Some((p, prest)), Some((r, rrest))) => p == r && glob(prest, rrest),
            _ => false,
        }
    }

    #[test]
    fn exact_pattern_matches_only_its_room() {
        let p = Pattern::parse("/news").unwrap();
        assert!(p.matches("/news"));
        assert!(!p.matches("/news/"));
        assert!(!p.matches("/new"));
        assert!(!p.matches("/newsroom"));
        assert!(!p.matches("/NEWS"));
    }

    #[test]
    fn prefix_pattern_covers_every_depth_but_not_the_parent() {
        let p = Pattern::parse("/chat/*").unwrap();
        assert_eq!(p, Pattern::Prefix("/chat/".into()));
        assert!(p.matches("/chat/a"));
        assert!(p.matches("/chat/a/b/c"));
        assert!(p.matches("/chat/"));
        assert!(!p.matches("/chat"));
        assert!(!p.matches("/chatter"));
        assert!(!p.matches("/other/chat/a"));
    }

    #[test]
    fn root_prefix_covers_every_path_and_star_every_room() {
        let root = Pattern::parse("/*").unwrap();
        assert!(root.matches("/") && root.matches("/a/b"));
        let any = Pattern::parse("*").unwrap();
        assert_eq!(any, Pattern::Any);
        assert!(any.matches("/x") && any.matches(""));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "", "news", "chat/*", "/chat*", "/a/*/b", "/a/**", "**", "/a b", "/a\tb", "/a?x=1",
            "/a#f", "/a\u{7f}", "*/",
        ] {
            assert_eq!(Pattern::parse(bad), None, "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATTERN_LEN));
        assert_eq!(Pattern::parse(&long), None);
        assert!(Pattern::parse(&long[..MAX_PATTERN_LEN]).is_some());
    }

    #[test]
    fn non_ascii_patterns_match_byte_for_byte() {
        let p = Pattern::parse("/café/*").unwrap();
        assert!(p.matches("/café/x"));
        assert!(!p.matches("/caf%C3%A9/x"));
    }

    #[test]
    fn lists_are_bounded_and_star_absorbs_the_rest() {
        let many = vec!["/a"; MAX_PATTERNS + 1];
        assert_eq!(Patterns::parse(&many), None);
        assert!(Patterns::parse(&many[..MAX_PATTERNS]).is_some());
        assert_eq!(Patterns::parse(&["/a", "*"]).unwrap(), Patterns::any());
        assert_eq!(Patterns::parse(&["/a", "bad"]), None);
        let empty: [&str; 0] = [];
        assert!(!Patterns::parse(&empty).unwrap().matches("/a"));
    }

    #[test]
    fn room_rights_carry_the_decision_and_the_expiry() {
        let rights = Rights::new(
            Patterns::parse(&["/news", "/chat/*"]).unwrap(),
            Patterns::parse(&["/chat/*"]).unwrap(),
            Some(100),
        );
        let chat = rights.for_room("/chat/x");
        assert_eq!(
            chat,
            RoomRights {
                read: true,
                write: true,
                expires_at: Some(100)
            }
        );
        let news = rights.for_room("/news");
        assert!(news.read && !news.write);
        assert!(!rights.for_room("/other").read);
        assert!(!chat.expired(99));
        assert!(chat.expired(100));
        assert_eq!(chat.seconds_left(40), Some(60));
        assert_eq!(chat.seconds_left(400), Some(0));
        assert_eq!(RoomRights::UNRESTRICTED.seconds_left(5), None);
        assert!(!RoomRights::UNRESTRICTED.expired(u64::MAX));
    }

    #[test]
    fn room_rights_stay_small() {
        assert_eq!(std::mem::size_of::<RoomRights>(), 24);
    }

    #[test]
    fn anonymous_reads_everything_and_writes_nothing() {
        let a = Rights::anonymous();
        assert!(a.may_read("/anything/at/all"));
        assert!(!a.may_write("/anything"));
        assert_eq!(a.expires_at(), None);
    }

    /// Patterns and rooms over a small alphabet, so matches are common.
    fn pattern_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            "/[ab/]{0,5}",
            "/[ab/]{0,4}/\\*",
            "[ab/*]{0,6}",
        ]
    }

    proptest! {
        #[test]
        fn pattern_matching_agrees_with_a_naive_glob(
            text in pattern_text(),
            room in "/[ab/]{0,7}",
        ) {
            if let Some(p) = Pattern::parse(&text) {
                prop_assert_eq!(p.matches(&room), glob(text.as_bytes(), room.as_bytes()));
                // What makes `/*` special: the parent itself is never covered.
                if let Some(parent) = text.strip_suffix("/*") {
                    prop_assert!(!p.matches(parent));
                }
            } else {
                // Refused patterns have a `*` out of place or no leading `/`.
                let star_ok = text == "*"
                    || text.strip_suffix("/*").is_some_and(|p| !p.contains('*'))
                    || !text.contains('*');
                prop_assert!(!text.starts_with('/') || !star_ok);
            }
        }

        #[test]
        fn a_list_matches_when_any_pattern_does(
            texts in proptest::collection::vec(pattern_text(), 0..6),
            room in "/[ab/]{0,7}",
        ) {
            let valid: Vec<&String> =
                texts.iter().filter(|t| Pattern::parse(t).is_some()).collect();
            let list = Patterns::parse(&valid).unwrap();
            let naive = valid.iter().any(|t| glob(t.as_bytes(), room.as_bytes()));
            prop_assert_eq!(list.matches(&room), naive);
        }
    }
}
