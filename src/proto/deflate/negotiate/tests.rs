use super::*;

const DEFAULT: Policy = Policy {
    server_takeover: false,
    client_takeover: false,
    max_window_bits: 15,
};

const TAKEOVER: Policy = Policy {
    server_takeover: true,
    client_takeover: true,
    max_window_bits: 15,
};

fn agree(header: &str, policy: &Policy) -> Option<Agreement> {
    negotiate([header.as_bytes()], policy)
}

/// The answer's header value, or "declined".
fn answer_to(header: &str, policy: &Policy) -> String {
    match agree(header, policy) {
        Some(a) => {
            let mut s = String::new();
            a.write(&mut s);
            s
        }
        None => "declined".into(),
    }
}

const NO_TAKEOVER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

#[test]
fn a_bare_offer_gets_no_context_takeover_both_ways_by_default() {
    assert_eq!(answer_to("permessage-deflate", &DEFAULT), NO_TAKEOVER);
    assert_eq!(answer_to("  Permessage-Deflate  ", &DEFAULT), NO_TAKEOVER);
}

#[test]
fn with_takeover_a_bare_offer_is_answered_bare() {
    assert_eq!(answer_to("permessage-deflate", &TAKEOVER), NAME);
}

#[test]
fn server_no_context_takeover_is_always_honoured() {
    assert_eq!(
        answer_to("permessage-deflate; server_no_context_takeover", &TAKEOVER),
        "permessage-deflate; server_no_context_takeover"
    );
    // With a value it is a bad offer.
    assert_eq!(
        answer_to("permessage-deflate; server_no_context_takeover=1", &DEFAULT),
        "declined"
    );
}

#[test]
fn client_no_context_takeover_is_echoed_and_spares_the_inflater() {
    let a = agree("permessage-deflate; client_no_context_takeover", &TAKEOVER).unwrap();
    assert!(a.client_no_context_takeover);
    assert!(!a.server_no_context_takeover);
    assert_eq!(
        answer_to(
            "permessage-deflate; client_no_context_takeover=x",
            &TAKEOVER
        ),
        "declined"
    );
}

#[test]
fn server_max_window_bits_needs_a_value_from_8_to_15() {
    for bits in 8..=15u8 {
        let a = agree(
            &format!("permessage-deflate; server_max_window_bits={bits}"),
            &DEFAULT,
        )
        .unwrap();
        assert_eq!(a.server_max_window_bits, Some(bits));
        assert_eq!(a.server_window_bits(), bits);
    }
    for bad in [
        "", "=", "=7", "=16", "=08", "=015", "=1", "=x", "=9 9", "=\"\"", "=-9",
    ] {
        assert_eq!(
            answer_to(
                &format!("permessage-deflate; server_max_window_bits{bad}"),
                &DEFAULT
            ),
            "declined",
            "{bad:?}"
        );
    }
}

#[test]
fn server_max_window_bits_is_answered_with_the_smaller_of_both() {
    let policy = Policy {
        max_window_bits: 10,
        ..DEFAULT
    };
    assert_eq!(
        agree("permessage-deflate; server_max_window_bits=12", &policy)
            .unwrap()
            .server_max_window_bits,
        Some(10)
    );
    assert_eq!(
        agree("permessage-deflate; server_max_window_bits=9", &policy)
            .unwrap()
            .server_max_window_bits,
        Some(9)
    );
    // Unasked, a server that keeps a smaller window says so.
    assert_eq!(
        agree("permessage-deflate", &policy)
            .unwrap()
            .server_max_window_bits,
        Some(10)
    );
    assert_eq!(
        agree("permessage-deflate", &DEFAULT)
            .unwrap()
            .server_max_window_bits,
        None
    );
}

#[test]
fn client_max_window_bits_with_and_without_a_value() {
    let policy = Policy {
        max_window_bits: 11,
        ..TAKEOVER
    };
    // Without a value: the server picks its own limit.
    let a = agree("permessage-deflate; client_max_window_bits", &policy).unwrap();
    assert_eq!(
        (a.client_max_window_bits, a.client_no_context_takeover),
        (Some(11), false)
    );
    // With one: the smaller of both.
    let a = agree("permessage-deflate; client_max_window_bits=9", &policy).unwrap();
    assert_eq!(a.client_max_window_bits, Some(9));
    assert_eq!(a.client_window_bits(), 9);
    let a = agree("permessage-deflate; client_max_window_bits=\"13\"", &policy).unwrap();
    assert_eq!(a.client_max_window_bits, Some(11));
    for bad in ["=7", "=16", "=010", "=", "=a"] {
        assert_eq!(
            answer_to(
                &format!("permessage-deflate; client_max_window_bits{bad}"),
                &policy
            ),
            "declined",
            "{bad:?}"
        );
    }
}

#[test]
fn a_client_whose_window_cannot_be_limited_keeps_no_context_under_a_small_window() {
    let policy = Policy {
        max_window_bits: 12,
        ..TAKEOVER
    };
    // §7.1.2.2: client_max_window_bits may not be answered unless offered,
    // so the only way to bound the inflater is no context at all.
    let a = agree("permessage-deflate", &policy).unwrap();
    assert!(a.client_no_context_takeover);
    assert_eq!(a.client_max_window_bits, None);
    assert!(!a.server_no_context_takeover);
}

#[test]
fn without_client_takeover_no_client_window_is_named() {
    let a = agree("permessage-deflate; client_max_window_bits=10", &DEFAULT).unwrap();
    assert_eq!(a.client_max_window_bits, None);
    assert!(a.client_no_context_takeover);
}

#[test]
fn unknown_and_duplicated_parameters_decline_the_offer() {
    for bad in [
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER",
        "permessage-deflate;",
        "permessage-deflate; =10",
        "permessage-deflate; server_max_window_bits=10=11",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate; server_max_window_bits=\"1\\\"\"",
        "permessage-deflate; server_max_window_bits=\"10\\\"",
        "x-webkit-deflate-frame",
        "permessage-deflatex",
        "",
    ] {
        assert_eq!(answer_to(bad, &DEFAULT), "declined", "{bad:?}");
    }
}

#[test]
fn quoted_values_are_unescaped_and_quoted_separators_do_not_split() {
    let a = agree(
        "permessage-deflate; server_max_window_bits=\"1\\0\"",
        &DEFAULT,
    )
    .unwrap();
    assert_eq!(a.server_max_window_bits, Some(10));
    // The comma and semicolon sit inside a (bad) quoted value: one offer,
    // declined, then the next one.
    let a = agree(
        "permessage-deflate; server_max_window_bits=\"9,;\", permessage-deflate; server_max_window_bits=11",
        &DEFAULT,
    )
    .unwrap();
    assert_eq!(a.server_max_window_bits, Some(11));
}

#[test]
fn several_offers_are_tried_in_order_and_the_first_good_one_wins() {
    let a = agree(
        "foo, permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10, permessage-deflate",
        &DEFAULT,
    )
    .unwrap();
    assert_eq!(a.server_max_window_bits, Some(10));
    // Across header lines too, in order.
    let a = negotiate(
        [
            &b"permessage-deflate; server_max_window_bits=20"[..],
            b"permessage-deflate; server_max_window_bits=12",
            b"permessage-deflate",
        ],
        &DEFAULT,
    )
    .unwrap();
    assert_eq!(a.server_max_window_bits, Some(12));
    assert_eq!(negotiate([&b"foo"[..], b"bar, baz"], &DEFAULT), None);
    assert_eq!(negotiate(std::iter::empty::<&[u8]>(), &DEFAULT), None);
}

#[test]
fn the_answer_names_only_what_was_agreed() {
    let policy = Policy {
        max_window_bits: 10,
        ..TAKEOVER
    };
    assert_eq!(
        answer_to(
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; server_max_window_bits=12",
            &policy
        ),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
    );
    assert_eq!(
        answer_to(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=12",
            &policy
        ),
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
    );
}

#[test]
fn autobahn_offers_are_accepted() {
    // What the Autobahn fuzzing client offers in cases 13.*.
    for (offer, answer) in [
        ("permessage-deflate; client_max_window_bits", NO_TAKEOVER),
        (
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
            NO_TAKEOVER,
        ),
        (
            "permessage-deflate; client_max_window_bits; server_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
        ),
        (
            "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=15",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
        ),
    ] {
        assert_eq!(answer_to(offer, &DEFAULT), answer, "{offer}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the header, negotiation answers or declines; an answer
        /// stays within the protocol's window range and is itself an
        /// acceptable offer's worth of parameters.
        #[test]
        fn any_header_is_answered_or_declined(
            header in "[a-z_=;, \"\\\\0-9-]{0,80}",
            server_takeover: bool, client_takeover: bool, bits in 8u8..=15,
        ) {
            let policy = Policy { server_takeover, client_takeover, max_window_bits: bits };
            if let Some(a) = agree(&header, &policy) {
                for b in [a.server_max_window_bits, a.client_max_window_bits].into_iter().flatten() {
                    prop_assert!((8..=bits).contains(&b));
                }
                let mut s = String::new();
                a.write(&mut s);
                prop_assert!(agree(&s, &DEFAULT).is_some(), "{}", s);
            }
        }
    }
}
