//! Verification against tokens minted by an independent implementation
//! ([`crate::auth::mint`]): every refusal, leeway edges, rotation,
//! algorithm confusion.

use super::*;
use crate::auth::keys::Key;
use crate::auth::mint::{b64, Signer};
use rand_core::RngCore;

const NOW: u64 = 1_700_000_000;

fn secret() -> Vec<u8> {
    let mut s = vec![0u8; 32];
    rand_core::OsRng.fill_bytes(&mut s);
    // A last byte of `\n` would be read as the file's trailing newline,
    // leaving a secret too short (one run in 256).
    s[31] = b'k';
    s
}

fn set(keys: &[(&str, &[u8])]) -> KeySet {
    KeySet::new(
        keys.iter()
            .map(|(name, bytes)| Key::parse(name, bytes).unwrap())
            .collect(),
    )
}

/// An HS256 signer and a key set holding its secret.
fn hs() -> (Signer, KeySet) {
    let s = secret();
    (Signer::hs256(&s), set(&[("hs", &s)]))
}

fn claims(exp: u64) -> String {
    format!(r#"{{"exp":{exp},"wsd":{{"read":["/news","/chat/*"],"write":["/chat/*"]}}}}"#)
}

fn ok(token: &str, keys: &KeySet) -> Rights {
    verify(token, keys, &Policy::default(), NOW).unwrap()
}

fn refused(token: &str, keys: &KeySet) -> Refusal {
    verify(token, keys, &Policy::default(), NOW).unwrap_err()
}

#[test]
fn an_hs256_token_grants_its_patterns() {
    let (signer, keys) = hs();
    let rights = ok(&signer.token(&claims(NOW + 60)), &keys);
    assert!(rights.may_read("/news") && !rights.may_write("/news"));
    assert!(rights.may_read("/chat/a") && rights.may_write("/chat/a/b"));
    assert!(!rights.may_read("/chat") && !rights.may_read("/other"));
    assert_eq!(rights.expires_at(), Some(NOW + 60 + 5));
}

#[test]
fn es256_eddsa_and_rs256_tokens_verify_with_their_public_keys() {
    let (es, es_pem) = Signer::es256();
    let (ed, ed_pem) = Signer::eddsa();
    let (rs, rs_spki) = Signer::rs256(true);
    let (_, rs_pkcs1) = Signer::rs256(false);
    for (signer, pem) in [
        (&es, &es_pem),
        (&ed, &ed_pem),
        (&rs, &rs_spki),
        (&rs, &rs_pkcs1),
    ] {
        let keys = set(&[("k.pem", pem.as_bytes())]);
        let rights = ok(&signer.token(&claims(NOW + 60)), &keys);
        assert!(rights.may_write("/chat/x"), "{}", signer.alg());
        // One claim changed under the same signature does not verify.
        let token = signer.token(&claims(NOW + 60));
        let (_, sig) = token.rsplit_once('.').unwrap();
        let other = signer.token(&claims(NOW + 61));
        let (input, _) = other.rsplit_once('.').unwrap();
        let spliced = format!("{input}.{sig}");
        assert_eq!(
            refused(&spliced, &keys),
            Refusal::BadSignature,
            "{}",
            signer.alg()
        );
    }
    let (other_es, _) = Signer::es256();
    let keys = set(&[("k.pem", es_pem.as_bytes())]);
    assert_eq!(
        refused(&other_es.token(&claims(NOW + 60)), &keys),
        Refusal::BadSignature
    );
}

#[test]
fn a_token_without_exp_is_refused() {
    let (signer, keys) = hs();
    assert_eq!(
        refused(&signer.token(r#"{"wsd":{"read":["*"]}}"#), &keys),
        Refusal::NoExpiry
    );
    assert_eq!(
        refused(&signer.token(r#"{"exp":null}"#), &keys),
        Refusal::NoExpiry
    );
    assert_eq!(refused(&signer.token("{}"), &keys), Refusal::NoExpiry);
}

#[test]
fn exp_is_honoured_up_to_the_leeway_and_not_a_second_more() {
    let (signer, keys) = hs();
    let at = |exp: u64, leeway: u64| {
        let policy = Policy {
            leeway: Duration::from_secs(leeway),
            ..Policy::default()
        };
        verify(&signer.token(&claims(exp)), &keys, &policy, NOW)
    };
    // Valid while now < exp + leeway (RFC 7519 §4.1.4: "on or after" is expired).
    assert_eq!(at(NOW - 5, 5), Err(Refusal::Expired));
    assert_eq!(at(NOW - 4, 5).unwrap().expires_at(), Some(NOW + 1));
    assert_eq!(at(NOW, 0), Err(Refusal::Expired));
    assert!(at(NOW + 1, 0).is_ok());
    assert_eq!(at(0, 5), Err(Refusal::Expired));
}

#[test]
fn nbf_and_iat_in_the_future_are_refused_beyond_the_leeway() {
    let (signer, keys) = hs();
    for claim in ["nbf", "iat"] {
        let token = |t: u64| signer.token(&format!(r#"{{"exp":{},"{claim}":{t}}}"#, NOW + 600));
        assert!(ok(&token(NOW + 5), &keys).expires_at().is_some(), "{claim}");
        assert_eq!(
            refused(&token(NOW + 6), &keys),
            Refusal::NotYetValid,
            "{claim}"
        );
        assert!(verify(&token(NOW - 1000), &keys, &Policy::default(), NOW).is_ok());
    }
}

#[test]
fn numeric_dates_may_be_fractions_negative_or_huge() {
    let (signer, keys) = hs();
    assert!(ok(&signer.token(r#"{"exp":1e30}"#), &keys).expires_at() == Some(u64::MAX));
    assert_eq!(
        refused(&signer.token(r#"{"exp":-5}"#), &keys),
        Refusal::Expired
    );
    assert_eq!(
        refused(&signer.token(r#"{"exp":-5.5}"#), &keys),
        Refusal::Expired
    );
    // 1700000000.9 is cut to NOW: expired with the leeway off.
    let policy = Policy {
        leeway: Duration::ZERO,
        ..Policy::default()
    };
    let frac = signer.token(&format!(r#"{{"exp":{NOW}.9}}"#));
    assert_eq!(verify(&frac, &keys, &policy, NOW), Err(Refusal::Expired));
    assert_eq!(
        refused(&signer.token(r#"{"exp":"2000000000"}"#), &keys),
        Refusal::Malformed
    );
}

#[test]
fn audience_is_checked_only_when_configured() {
    let (signer, keys) = hs();
    let policy = Policy {
        audience: Some("wsd".into()),
        ..Policy::default()
    };
    let with = |aud: &str| {
        let token = signer.token(&format!(r#"{{"exp":{},"aud":{aud}}}"#, NOW + 60));
        (
            verify(&token, &keys, &policy, NOW).map(|_| ()),
            verify(&token, &keys, &Policy::default(), NOW).map(|_| ()),
        )
    };
    assert_eq!(with(r#""wsd""#), (Ok(()), Ok(())));
    assert_eq!(with(r#"["other","wsd"]"#), (Ok(()), Ok(())));
    assert_eq!(with(r#""other""#), (Err(Refusal::WrongAudience), Ok(())));
    assert_eq!(with(r#"[]"#), (Err(Refusal::WrongAudience), Ok(())));
    assert_eq!(with("null"), (Err(Refusal::WrongAudience), Ok(())));
    assert_eq!(
        with("5"),
        (Err(Refusal::Malformed), Err(Refusal::Malformed))
    );
}

#[test]
fn issuer_is_checked_only_when_configured() {
    let (signer, keys) = hs();
    let policy = Policy {
        issuer: Some("https://auth.example".into()),
        ..Policy::default()
    };
    let good = signer.token(&format!(
        r#"{{"exp":{},"iss":"https://auth.example"}}"#,
        NOW + 60
    ));
    let bad = signer.token(&format!(
        r#"{{"exp":{},"iss":"https://evil.example"}}"#,
        NOW + 60
    ));
    let none = signer.token(&format!(r#"{{"exp":{}}}"#, NOW + 60));
    assert!(verify(&good, &keys, &policy, NOW).is_ok());
    assert_eq!(verify(&bad, &keys, &policy, NOW), Err(Refusal::WrongIssuer));
    assert_eq!(
        verify(&none, &keys, &policy, NOW),
        Err(Refusal::WrongIssuer)
    );
    assert!(verify(&bad, &keys, &Policy::default(), NOW).is_ok());
}

#[test]
fn a_token_signed_with_another_secret_or_tampered_is_a_bad_signature() {
    let (signer, keys) = hs();
    let other = Signer::hs256(&secret());
    assert_eq!(
        refused(&other.token(&claims(NOW + 60)), &keys),
        Refusal::BadSignature
    );
    // Widen the rights in a validly signed token: the signature breaks.
    let token = signer.token(&claims(NOW + 60));
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(format!(r#"{{"exp":{},"wsd":{{"write":["*"]}}}}"#, NOW + 60).as_bytes());
    parts[1] = &forged;
    assert_eq!(refused(&parts.join("."), &keys), Refusal::BadSignature);
    // Even forged claims that are malformed: the signature comes first.
    let junk = b64(b"not json");
    parts[1] = &junk;
    assert_eq!(refused(&parts.join("."), &keys), Refusal::BadSignature);
}

#[test]
fn alg_none_is_refused_in_any_spelling() {
    let (_, keys) = hs();
    let body = b64(claims(NOW + 60).as_bytes());
    for alg in ["none", "None", "NONE", "hs256", "HS384", "PS256", ""] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        for sig in ["", "c2ln"] {
            let token = format!("{header}.{body}.{sig}");
            assert_eq!(
                refused(&token, &keys),
                Refusal::AlgorithmNotAllowed,
                "{alg} {sig:?}"
            );
        }
    }
    // An HS256 header with no signature does not pass either.
    let header = b64(br#"{"alg":"HS256"}"#);
    assert_eq!(
        refused(&format!("{header}.{body}."), &keys),
        Refusal::BadSignature
    );
}

#[test]
fn an_hs256_token_made_with_the_rsa_public_key_is_refused() {
    let (_, pem) = Signer::rs256(true);
    // The classic confusion: the public key's PEM bytes as an HMAC secret.
    let forger = Signer::hs256(pem.as_bytes());
    let token = forger.token(&claims(NOW + 60));
    let rsa_only = set(&[("rsa.pem", pem.as_bytes())]);
    assert_eq!(refused(&token, &rsa_only), Refusal::AlgorithmNotAllowed);
    // With an HS256 key beside it, the forgery is tried against that
    // secret only, never against the PEM.
    let s = secret();
    let both = set(&[("rsa.pem", pem.as_bytes()), ("hs", &s)]);
    assert_eq!(refused(&token, &both), Refusal::BadSignature);
    // And an ES256 token against an RSA key is not allowed either.
    let (es, _) = Signer::es256();
    assert_eq!(
        refused(&es.token(&claims(NOW + 60)), &rsa_only),
        Refusal::AlgorithmNotAllowed
    );
}

#[test]
fn every_key_is_tried_so_keys_can_rotate() {
    let (old, new, gone) = (secret(), secret(), secret());
    let (es, es_pem) = Signer::es256();
    let keys = set(&[("old", &old), ("es.pem", es_pem.as_bytes()), ("new", &new)]);
    for signer in [Signer::hs256(&old), Signer::hs256(&new), es] {
        assert!(ok(&signer.token(&claims(NOW + 60)), &keys).may_read("/news"));
    }
    let token = Signer::hs256(&gone).token(&claims(NOW + 60));
    assert_eq!(refused(&token, &keys), Refusal::BadSignature);
    // Without the old key, its tokens are refused.
    let rotated = set(&[("new", &new)]);
    let old_token = Signer::hs256(&old).token(&claims(NOW + 60));
    assert_eq!(refused(&old_token, &rotated), Refusal::BadSignature);
}

#[test]
fn a_token_over_the_length_bound_is_refused_unread() {
    let (signer, keys) = hs();
    let big = format!(
        r#"{{"exp":{},"pad":"{}"}}"#,
        NOW + 60,
        "a".repeat(100 * 1024)
    );
    let token = signer.token(&big);
    assert!(token.len() > 100 * 1024);
    assert_eq!(refused(&token, &keys), Refusal::Malformed);
    // Just under the bound is fine.
    let pad = MAX_TOKEN_LEN * 3 / 4 - 200;
    let fits = signer.token(&format!(
        r#"{{"exp":{},"pad":"{}"}}"#,
        NOW + 60,
        "a".repeat(pad)
    ));
    assert!(fits.len() <= MAX_TOKEN_LEN);
    assert!(verify(&fits, &keys, &Policy::default(), NOW).is_ok());
}

#[test]
fn tokens_of_the_wrong_shape_are_malformed() {
    let (signer, keys) = hs();
    let good = signer.token(&claims(NOW + 60));
    let (head, rest) = good.split_once('.').unwrap();
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.x.y"),
        format!("{good}="),
        format!(" {good}"),
        format!(".{rest}"),
        format!("{head}..sig"),
        format!("{}.{rest}", b64(b"not json")),
        format!("{}.{rest}", b64(br#"{"typ":"JWT"}"#)),
        format!("{}.{rest}", b64(br#"{"alg":5}"#)),
        format!("{}.{rest}", b64(br#"{"alg":"HS256","crit":["b64"]}"#)),
        format!("{}.{rest}", b64(br#"{"alg":"HS256","alg":"HS256"}"#)),
        format!("{}.{rest}", b64(br#"["HS256"]"#)),
    ];
    for token in &cases {
        assert_eq!(refused(token, &keys), Refusal::Malformed, "{token}");
    }
}

#[test]
fn signed_claims_of_the_wrong_form_are_malformed() {
    let (signer, keys) = hs();
    let exp = NOW + 60;
    for claims in [
        "not json".to_string(),
        "[]".into(),
        // Serde would read an array as the struct's fields in order.
        format!("[{exp}]"),
        "\"x\"".into(),
        format!(r#"{{"exp":{exp},"exp":{exp}}}"#),
        format!(r#"{{"exp":{exp},"wsd":{{"read":["chat"]}}}}"#),
        format!(r#"{{"exp":{exp},"wsd":{{"read":["/a*"]}}}}"#),
        format!(r#"{{"exp":{exp},"wsd":{{"wirte":["/a"]}}}}"#),
        format!(r#"{{"exp":{exp},"wsd":{{"read":"/a"}}}}"#),
        format!(r#"{{"exp":{exp},"wsd":["/a"]}}"#),
        format!(r#"{{"exp":{exp},"wsd":[["*"],["*"]]}}"#),
        format!(r#"{{"exp":{exp},"iss":5}}"#),
        format!(
            r#"{{"exp":{exp},"wsd":{{"read":[{}]}}}}"#,
            vec![r#""/a""#; 65].join(",")
        ),
    ] {
        assert_eq!(
            refused(&signer.token(&claims), &keys),
            Refusal::Malformed,
            "{claims}"
        );
    }
    // A bad pattern is malformed even in an expired token: shape first.
    let expired = r#"{"exp":1,"wsd":{"write":["x"]}}"#;
    assert_eq!(refused(&signer.token(expired), &keys), Refusal::Malformed);
}

#[test]
fn a_token_without_the_wsd_claim_grants_no_room() {
    let (signer, keys) = hs();
    let rights = ok(
        &signer.token(&format!(r#"{{"exp":{},"sub":"u1"}}"#, NOW + 60)),
        &keys,
    );
    assert!(!rights.may_read("/") && !rights.may_write("/"));
    let empty = ok(
        &signer.token(&format!(r#"{{"exp":{},"wsd":{{}}}}"#, NOW + 60)),
        &keys,
    );
    assert!(!empty.may_read("/"));
}

#[test]
fn no_keys_refuses_every_token_for_its_algorithm() {
    let (signer, _) = hs();
    let none = KeySet::default();
    assert_eq!(
        refused(&signer.token(&claims(NOW + 60)), &none),
        Refusal::AlgorithmNotAllowed
    );
}

#[test]
fn admit_without_a_token_depends_on_anonymous_read() {
    let (signer, keys) = hs();
    let anon = Policy {
        anonymous_read: true,
        ..Policy::default()
    };
    assert_eq!(
        admit(None, &keys, &Policy::default(), NOW),
        Err(Refusal::Missing)
    );
    assert_eq!(admit(None, &keys, &anon, NOW), Ok(Rights::anonymous()));
    // A bad token is refused even with anonymous read on.
    let expired = signer.token(&claims(NOW - 60));
    assert_eq!(
        admit(Some(&expired), &keys, &anon, NOW),
        Err(Refusal::Expired)
    );
    assert_eq!(
        admit(Some("junk"), &keys, &anon, NOW),
        Err(Refusal::Malformed)
    );
    let good = signer.token(&claims(NOW + 60));
    assert!(admit(Some(&good), &keys, &anon, NOW)
        .unwrap()
        .may_write("/chat/a"));
}
