//! Key files: each kind, each refusal, and that no error or debug output
//! shows key material.

use super::*;
use crate::auth::mint::Signer;
use crate::auth::scratch::Dir;
use crate::auth::{verify, Policy, Refusal};

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn token(signer: &Signer) -> String {
    signer.token(&format!(r#"{{"exp":{}}}"#, NOW + 60))
}

fn verifies(keys: &KeySet, signer: &Signer) -> Result<(), Refusal> {
    verify(&token(signer), keys, &Policy::default(), NOW).map(|_| ())
}

fn one(bytes: &[u8]) -> KeySet {
    KeySet::new(vec![Key::parse("k", bytes).unwrap()])
}

#[test]
fn a_secret_loses_one_trailing_newline() {
    let signer = Signer::hs256(SECRET);
    for file in [&b"\n"[..], b"\r\n", b""] {
        let bytes = [&SECRET[..], file].concat();
        assert_eq!(verifies(&one(&bytes), &signer), Ok(()), "{file:?}");
    }
    // Only one: a second newline is part of the secret.
    let two = [&SECRET[..], b"\n\n"].concat();
    let with_one = Signer::hs256(&[&SECRET[..], b"\n"].concat());
    assert_eq!(verifies(&one(&two), &with_one), Ok(()));
    assert_eq!(verifies(&one(&two), &signer), Err(Refusal::BadSignature));
    assert_eq!(Key::parse("k", SECRET).unwrap().alg(), Alg::Hs256);
}

#[test]
fn empty_and_short_secrets_are_refused() {
    assert_eq!(Key::parse("k", b"").err(), Some(KeyProblem::EmptySecret));
    assert_eq!(Key::parse("k", b"\n").err(), Some(KeyProblem::EmptySecret));
    assert_eq!(
        Key::parse("k", b"\r\n").err(),
        Some(KeyProblem::EmptySecret)
    );
    assert_eq!(
        Key::parse("k", &SECRET[..31]).err(),
        Some(KeyProblem::ShortSecret(31))
    );
    assert_eq!(
        Key::parse("k", &[&SECRET[..31], b"\n"].concat()).err(),
        Some(KeyProblem::ShortSecret(31))
    );
}

#[test]
fn a_pem_public_key_fixes_its_algorithm() {
    let (_, es) = Signer::es256();
    let (_, ed) = Signer::eddsa();
    let (_, rs_spki) = Signer::rs256(true);
    let (_, rs_pkcs1) = Signer::rs256(false);
    for (pem, alg) in [
        (es, Alg::Es256),
        (ed, Alg::EdDsa),
        (rs_spki, Alg::Rs256),
        (rs_pkcs1, Alg::Rs256),
    ] {
        assert_eq!(Key::parse("k.pem", pem.as_bytes()).unwrap().alg(), alg);
        // Leading blank lines and a CRLF file are still PEM.
        let crlf = format!("\n{}", pem.replace('\n', "\r\n"));
        assert_eq!(Key::parse("k.pem", crlf.as_bytes()).unwrap().alg(), alg);
    }
}

#[test]
fn private_keys_and_certificates_are_refused() {
    let key = rcgen::KeyPair::generate().unwrap();
    assert_eq!(
        Key::parse("k", key.serialize_pem().as_bytes()).err(),
        Some(KeyProblem::PrivateKey)
    );
    let rsa_private = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(
        Key::parse("k", rsa_private.as_bytes()).err(),
        Some(KeyProblem::PrivateKey)
    );
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert_eq!(
        Key::parse("k", cert.pem().as_bytes()).err(),
        Some(KeyProblem::Certificate)
    );
    // Its public key is what to give.
    let public = key.public_key_pem();
    assert_eq!(
        Key::parse("k", public.as_bytes()).unwrap().alg(),
        Alg::Es256
    );
}

#[test]
fn other_curves_and_kinds_of_pem_are_refused() {
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    assert_eq!(
        Key::parse("k", p384.public_key_pem().as_bytes()).err(),
        Some(KeyProblem::UnsupportedCurve)
    );
    let other = "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n";
    assert_eq!(
        Key::parse("k", other.as_bytes()).err(),
        Some(KeyProblem::UnsupportedKey)
    );
    // A DER that is no key: an empty SEQUENCE.
    let empty = "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n";
    assert_eq!(
        Key::parse("k", empty.as_bytes()).err(),
        Some(KeyProblem::UnsupportedKey)
    );
    for bad in [
        "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n",
        "-----BEGIN",
        "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
    ] {
        assert_eq!(
            Key::parse("k", bad.as_bytes()).err(),
            Some(KeyProblem::BadPem),
            "{bad}"
        );
    }
}

#[test]
fn load_reads_every_file_in_order() {
    let dir = Dir::new("load");
    let (es, es_pem) = Signer::es256();
    let paths = [
        dir.file("secret", &[&SECRET[..], b"\n"].concat()),
        dir.file("es.pem", es_pem.as_bytes()),
    ];
    let keys = KeySet::load(&paths).unwrap();
    assert_eq!(keys.len(), 2);
    let names: Vec<_> = keys.keys().iter().map(|k| (k.name(), k.alg())).collect();
    assert_eq!(names, [("secret", Alg::Hs256), ("es.pem", Alg::Es256)]);
    assert_eq!(keys.for_alg(Alg::Es256).count(), 1);
    assert_eq!(verifies(&keys, &es), Ok(()));
    assert_eq!(verifies(&keys, &Signer::hs256(SECRET)), Ok(()));
    assert!(KeySet::load::<PathBuf>(&[]).unwrap().is_empty());
}

#[test]
fn a_bad_file_is_named_and_its_bytes_never_shown() {
    let dir = Dir::new("bad");
    let short = b"hunter2-is-not-a-good-secret";
    let good = dir.file("good", SECRET);
    let bad = dir.file("short", short);
    let err = KeySet::load(&[good, bad.clone()]).unwrap_err();
    assert_eq!(err.path, bad);
    assert_eq!(err.problem, KeyProblem::ShortSecret(short.len()));
    let text = err.to_string();
    assert!(
        text.contains("short") && text.contains("28 bytes"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    let missing = dir.0.join("missing");
    let err = KeySet::load(&[missing]).unwrap_err();
    assert_eq!(err.problem, KeyProblem::Unreadable(io::ErrorKind::NotFound));
    assert!(err.to_string().contains("missing"));

    let huge = dir.file("huge", &vec![b'a'; MAX_KEY_FILE as usize + 1]);
    assert_eq!(
        KeySet::load(&[huge]).unwrap_err().problem,
        KeyProblem::TooLarge
    );
    let largest = dir.file("largest", &vec![b'a'; MAX_KEY_FILE as usize]);
    assert_eq!(KeySet::load(&[largest]).unwrap().len(), 1);
}

#[test]
fn debug_output_names_keys_without_their_material() {
    let keys = one(SECRET);
    let text = format!("{keys:?}");
    assert!(text.contains("Hs256"), "{text}");
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(!text.contains("48, 49, 50"), "{text}");
}

#[test]
fn header_algorithms_are_case_sensitive_names() {
    for alg in [Alg::Hs256, Alg::Rs256, Alg::Es256, Alg::EdDsa] {
        assert_eq!(Alg::from_header(alg.name()), Some(alg));
        assert_eq!(Alg::from_header(&alg.name().to_lowercase()), None);
    }
    assert_eq!(Alg::from_header("none"), None);
}
