//! The door as the reactor will use it: [`authorize`] over a request
//! target and an `Authorization` value, and what each refusal answers.

use super::mint::Signer;
use super::*;

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn keys() -> KeySet {
    KeySet::new(vec![Key::parse("k", SECRET).unwrap()])
}

fn token(read: &str, write: &str) -> String {
    Signer::hs256(SECRET).token(&format!(
        r#"{{"exp":{},"wsd":{{"read":{read},"write":{write}}}}}"#,
        NOW + 60
    ))
}

fn door<'a>(
    target: &'a str,
    auth: Option<&str>,
    policy: &Policy,
) -> Result<Admission<'a>, Refusal> {
    authorize(target, auth.map(str::as_bytes), &keys(), policy, NOW)
}

#[test]
fn without_keys_or_anonymous_read_everyone_gets_every_right() {
    let off = authorize(
        "/room?token=junk",
        None,
        &KeySet::default(),
        &Policy::default(),
        NOW,
    );
    assert_eq!(
        off,
        Ok(Admission {
            room: "/room",
            rights: RoomRights::UNRESTRICTED
        })
    );
    assert!(!enabled(&KeySet::default(), &Policy::default()));
    assert!(enabled(&keys(), &Policy::default()));
}

#[test]
fn a_query_token_admits_to_its_room_and_stays_out_of_the_room_name() {
    let t = token(r#"["/chat/*"]"#, r#"["/chat/a"]"#);
    let target = format!("/chat/a?token={t}&x=1");
    let admitted = door(&target, None, &Policy::default()).unwrap();
    assert_eq!(admitted.room, "/chat/a");
    assert_eq!(
        admitted.rights,
        RoomRights {
            read: true,
            write: true,
            expires_at: Some(NOW + 65)
        }
    );
    let target = format!("/chat/b?token={t}");
    let read_only = door(&target, None, &Policy::default()).unwrap();
    assert!(read_only.rights.read && !read_only.rights.write);
}

#[test]
fn a_bearer_header_admits_the_same() {
    let t = token(r#"["/news"]"#, "[]");
    let auth = format!("Bearer {t}");
    let admitted = door("/news", Some(&auth), &Policy::default()).unwrap();
    assert_eq!(admitted.room, "/news");
    assert!(!admitted.rights.write);
    assert_eq!(
        door(&format!("/news?token={t}"), Some(&auth), &Policy::default()),
        Err(Refusal::Malformed)
    );
}

#[test]
fn a_good_token_without_read_for_the_room_is_forbidden() {
    let t = token(r#"["/news"]"#, r#"["/sports"]"#);
    let target = format!("/sports?token={t}");
    let refused = door(&target, None, &Policy::default()).unwrap_err();
    assert_eq!(refused, Refusal::Forbidden);
    assert_eq!(refused.status(), 403);
}

#[test]
fn no_token_is_missing_unless_anonymous_read() {
    assert_eq!(
        door("/news", None, &Policy::default()),
        Err(Refusal::Missing)
    );
    assert_eq!(
        door("/news", Some("Basic dXNlcjpwYXNz"), &Policy::default()),
        Err(Refusal::Missing)
    );
    let anon = Policy {
        anonymous_read: true,
        ..Policy::default()
    };
    let admitted = door("/news", None, &anon).unwrap();
    assert_eq!(
        admitted.rights,
        RoomRights {
            read: true,
            write: false,
            expires_at: None
        }
    );
    // Anonymous read without any key: a read-only public server.
    let public = authorize("/news", None, &KeySet::default(), &anon, NOW).unwrap();
    assert!(public.rights.read && !public.rights.write);
    let t = token(r#"["*"]"#, r#"["*"]"#);
    assert_eq!(
        authorize(
            &format!("/news?token={t}"),
            None,
            &KeySet::default(),
            &anon,
            NOW
        ),
        Err(Refusal::AlgorithmNotAllowed)
    );
}

#[test]
fn every_refusal_has_a_distinct_label_a_status_and_a_challenge() {
    let labels: std::collections::HashSet<_> = Refusal::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), Refusal::ALL.len());
    for r in Refusal::ALL {
        assert!(r
            .label()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_'));
        assert!(!r.reason().is_empty() && r.to_string() == r.reason());
        let (status, challenge) = (r.status(), r.www_authenticate());
        assert!(challenge.starts_with("Bearer"));
        match r {
            Refusal::Forbidden => {
                assert_eq!(
                    (status, challenge),
                    (403, "Bearer error=\"insufficient_scope\"")
                )
            }
            Refusal::Missing => assert_eq!((status, challenge), (401, "Bearer")),
            _ => assert_eq!((status, challenge), (401, "Bearer error=\"invalid_token\"")),
        }
    }
}

#[test]
fn each_token_refusal_reaches_the_door() {
    let signer = Signer::hs256(SECRET);
    let policy = Policy {
        audience: Some("wsd".into()),
        issuer: Some("me".into()),
        ..Policy::default()
    };
    let good = r#""aud":"wsd","iss":"me","wsd":{"read":["*"]}"#;
    let cases = [
        (
            format!(r#"{{"exp":{},{good}}}"#, NOW - 10),
            Refusal::Expired,
        ),
        (
            format!(r#"{{"exp":{},"nbf":{},{good}}}"#, NOW + 99, NOW + 60),
            Refusal::NotYetValid,
        ),
        (format!(r#"{{{good}}}"#), Refusal::NoExpiry),
        (
            format!(r#"{{"exp":{},"aud":"x","iss":"me"}}"#, NOW + 9),
            Refusal::WrongAudience,
        ),
        (
            format!(r#"{{"exp":{},"aud":"wsd","iss":"x"}}"#, NOW + 9),
            Refusal::WrongIssuer,
        ),
    ];
    for (claims, want) in cases {
        let target = format!("/r?token={}", signer.token(&claims));
        assert_eq!(
            door(&target, None, &policy).map(|_| ()),
            Err(want),
            "{claims}"
        );
    }
    let other = Signer::hs256(&[7; 32]).token(&format!(r#"{{"exp":{}}}"#, NOW + 9));
    let target = format!("/r?token={other}");
    assert_eq!(door(&target, None, &policy), Err(Refusal::BadSignature));
    assert_eq!(
        door("/r?token=a.b.c", None, &policy),
        Err(Refusal::Malformed)
    );
}

#[test]
fn may_publish_needs_a_good_token_whose_write_covers_the_room() {
    let policy = Policy::default();
    let t = token(r#"["*"]"#, r#"["/chat/*"]"#);
    let check = |t: &str, room| may_publish(t.as_bytes(), room, &keys(), &policy, NOW);
    assert_eq!(check(&t, "/chat/a"), Ok(()));
    assert_eq!(check(&t, "/news"), Err(Refusal::Forbidden));
    assert_eq!(check("", "/chat/a"), Err(Refusal::Missing));
    assert_eq!(check("a.b.c", "/chat/a"), Err(Refusal::Malformed));
    let forged = Signer::hs256(&[b'x'; 32]).token(&format!(
        r#"{{"exp":{},"wsd":{{"write":["*"]}}}}"#,
        NOW + 60
    ));
    assert_eq!(check(&forged, "/chat/a"), Err(Refusal::BadSignature));
    let anonymous = Policy {
        anonymous_read: true,
        ..Policy::default()
    };
    assert_eq!(
        may_publish(b"", "/chat/a", &keys(), &anonymous, NOW),
        Err(Refusal::Missing)
    );
    assert_eq!(bearer_token(b"Bearer abc"), Ok(Some("abc")));
    assert_eq!(bearer_token(b"Basic abc"), Ok(None));
}
